/**
 * Test helper: mnemo-train on its sources (tsx), as a child process. Asynchronous: a test that
 * waits on several CLI runs in a row must not block its worker's event loop (vitest's RPC to the
 * worker times out).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=mnemo-source', 'src/cli.ts', ...args],
      { cwd: root, encoding: 'utf8', timeout: timeoutMs },
      (error, out, err) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, out, err }),
    );
  });
}
