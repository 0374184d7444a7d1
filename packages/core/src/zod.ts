/**
 * Config validated once, at the edge: zod schemas in each package, and one way to turn zod's
 * issues into a ConfigError that names the first bad field (dotted path) and lists the rest.
 */
import type { z } from 'zod';
import { ConfigError } from './errors';

/** Turn zod issues into a ConfigError naming the first bad field (dotted path), with all issues listed. */
export function zodToConfigError(err: z.ZodError, prefix = ''): ConfigError {
  const issues = err.issues.map((i) => {
    const field = [prefix, ...i.path.map(String)].filter(Boolean).join('.') || prefix || '(root)';
    return { field, message: i.message };
  });
  const first = issues[0] ?? { field: prefix || '(root)', message: 'invalid' };
  const rest = issues
    .slice(1)
    .map((i) => `; ${i.field}: ${i.message}`)
    .join('');
  return new ConfigError(first.field, `${first.message}${rest}`);
}

/** `schema.parse(input)`, throwing a ConfigError naming the bad field (under `prefix`) instead of a ZodError. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw zodToConfigError(r.error, prefix);
  return r.data;
}
