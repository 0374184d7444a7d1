/**
 * GET /: the inspector page (page/index.html, one static file with inline script and style; no
 * build step, no CDN). Type a prompt, watch the completion stream, see per token which slots
 * each memory block read (a heat map of /v1/memory/lookup) and which Memory³ references were
 * read; click a slot for the sample-text tokens that read it most.
 *
 * Access: the page itself is public (it holds no data: like /healthz it is `config.public`), but
 * every API call it makes goes through the usual rules — with an API key set, the user pastes
 * the key into the page, which keeps it in memory only and sends it as a bearer token. The Host
 * check (DNS rebinding) applies to the page too. A Content-Security-Policy allows only the page's
 * own inline script and style (by hash) and connections to this origin.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** page/index.html of this package, from src/routes (sources, tests) or dist (the build). */
export function pageFile(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const f = path.resolve(here, up, 'page', 'index.html');
    if (existsSync(f)) return f;
  }
  throw new Error(`page/index.html not found near ${here}; the package ships it (package.json files)`);
}

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

export function registerPage(app: FastifyInstance): void {
  const html = readFileSync(pageFile(), 'utf8');
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => hash(m[1]!));
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => hash(m[1]!));
  const csp = [
    "default-src 'none'",
    `script-src ${scripts.join(' ')}`,
    `style-src ${styles.join(' ')}`, // the heat map shades cells through CSSOM, which CSP allows
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  app.get('/', { config: { public: true } }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(html),
  );
}
