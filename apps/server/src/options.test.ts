import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { USAGE, parseCli, parseServerOptions } from './options';

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('no error thrown');
}

describe('options', () => {
  it('defaults bind loopback and enable batching', () => {
    const o = parseCli(['--checkpoint', 'runs/demo'], {});
    expect(o.host).toBe('127.0.0.1');
    expect(o.port).toBe(8080);
    expect(o.batching).toBe(true);
    expect(o.apiKey).toBeUndefined();
    expect(o.checkpoint).toBe('runs/demo');
  });

  it('reads every flag, and the API key from the environment', () => {
    const o = parseCli(
      [
        '--checkpoint=c',
        '--host',
        '0.0.0.0',
        '--port',
        '0',
        '--max-queue',
        '3',
        '--max-batch',
        '5',
        '--no-batching',
        '--timeout-ms',
        '100',
        '--max-tokens',
        '7',
        '--max-prompt-tokens',
        '9',
        '--body-limit',
        '2048',
      ],
      { MNEMO_API_KEY: 'k1' },
    );
    expect(o).toMatchObject({
      host: '0.0.0.0',
      port: 0,
      maxQueue: 3,
      maxBatch: 5,
      batching: false,
      timeoutMs: 100,
      maxTokens: 7,
      maxPromptTokens: 9,
      bodyLimit: 2048,
      apiKey: 'k1',
    });
    expect(parseCli(['--checkpoint', 'c', '--api-key', 'k2'], { MNEMO_API_KEY: 'k1' }).apiKey).toBe('k2');
  });

  it('the API key from a file (--api-key-file) or the environment; --api-key still works but warns it is visible', () => {
    const files: Record<string, string> = { '/k': 'from-file\n', '/empty': '' };
    const read = (f: string) => {
      if (!(f in files)) throw new Error('ENOENT');
      return files[f]!;
    };
    const fromFile = parseCli(['--checkpoint', 'c', '--api-key-file', '/k'], { MNEMO_API_KEY: 'env' }, read);
    expect(fromFile.apiKey).toBe('from-file');
    expect(fromFile.warnings).toEqual([]);
    const fromEnv = parseCli(['--checkpoint', 'c'], { MNEMO_API_KEY: 'env' }, read);
    expect([fromEnv.apiKey, fromEnv.warnings]).toEqual(['env', []]);
    const argv = parseCli(['--checkpoint', 'c', '--api-key', 'k2'], {}, read);
    expect(argv.apiKey).toBe('k2');
    expect(argv.warnings.join()).toMatch(/--api-key puts the key on the command line.*--api-key-file/);
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--api-key-file', '/none'], {}, read))).toBe('--api-key-file');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--api-key-file', '/empty'], {}, read))).toBe('--api-key-file');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--api-key-file', '/k', '--api-key', 'x'], {}, read))).toBe('--api-key');
    // the new limits are flags too
    expect(
      parseCli(
        ['--checkpoint', 'c', '--request-timeout-ms', '500', '--max-connections', '9', '--allowed-hosts', 'a.example,b.example'],
        {},
      ),
    ).toMatchObject({
      requestTimeoutMs: 500,
      maxConnections: 9,
      allowedHosts: ['a.example', 'b.example'],
    });
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--max-connections', '0'], {}))).toBe('--max-connections');
  });

  it('errors name the flag', () => {
    expect(fieldOf(() => parseCli([], {}))).toBe('--checkpoint');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--port', 'x'], {}))).toBe('--port');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--port', '70000'], {}))).toBe('--port');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--max-batch', '0'], {}))).toBe('--max-batch');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--bogus'], {}))).toBe('arguments');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--log-level', 'loud'], {}))).toBe('--log-level');
    expect(fieldOf(() => parseServerOptions({ maxTokens: -1 }))).toBe('maxTokens');
    expect(fieldOf(() => parseServerOptions({ nope: 1 }))).toBe('nope');
  });

  it('takes --flag=value; a missing value names the flag; an unknown flag names the closest one', () => {
    expect(parseCli(['--checkpoint=c', '--port=0', '--log-level=info'], {})).toMatchObject({ checkpoint: 'c', port: 0, logLevel: 'info' });
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--port'], {}))).toBe('--port');
    expect(fieldOf(() => parseCli(['--checkpoint', 'c', '--port=-1'], {}))).toBe('--port');
    expect(() => parseCli(['--checkpoint', 'c', '--max-bacth', '4'], {})).toThrow(
      'arguments: unknown flag --max-bacth; did you mean --max-batch? (mnemo-serve --help lists the flags)',
    );
    expect(() => parseCli(['--checkpoint', 'c', 'extra'], {})).toThrow("arguments: unexpected argument 'extra'");
    expect(parseCli(['-h'], {}).help).toBe(true);
  });

  it("the help text lists every flag with the schema's defaults", () => {
    for (const line of [
      '--checkpoint DIR',
      '--port N                  TCP port, 0 = any free port (default 8080)',
      '--max-batch N             sequences decoded together per step (default 16)',
      '--body-limit BYTES        largest request body (default 1048576)',
      '--no-batching             decode one request at a time',
      '--log-level LEVEL         fatal|error|warn|info|debug|silent; info logs every request (default warn)',
      '--request-timeout-ms N    time to receive a whole request (headers and body) (default 30000)',
      '--max-connections N       open connections at most (default 256)',
      '-h, --help',
    ]) {
      // the description column moves with the longest flag: compare with runs of spaces collapsed
      expect(USAGE.replace(/ {2,}/g, '  ')).toContain(`\n  ${line.replace(/ {2,}/g, '  ')}`);
    }
  });
});
