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
      ['--checkpoint=c', '--host', '0.0.0.0', '--port', '0', '--max-queue', '3', '--max-batch', '5', '--no-batching',
       '--timeout-ms', '100', '--max-tokens', '7', '--max-prompt-tokens', '9', '--body-limit', '2048'],
      { MNEMO_API_KEY: 'k1' },
    );
    expect(o).toMatchObject({
      host: '0.0.0.0', port: 0, maxQueue: 3, maxBatch: 5, batching: false, timeoutMs: 100,
      maxTokens: 7, maxPromptTokens: 9, bodyLimit: 2048, apiKey: 'k1',
    });
    expect(parseCli(['--checkpoint', 'c', '--api-key', 'k2'], { MNEMO_API_KEY: 'k1' }).apiKey).toBe('k2');
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

  it('the help text lists every flag with the schema\'s defaults', () => {
    for (const line of [
      '--checkpoint DIR',
      '--port N                 TCP port, 0 = any free port (default 8080)',
      '--max-batch N            sequences decoded together per step (default 16)',
      '--body-limit BYTES       largest request body (default 1048576)',
      '--no-batching            decode one request at a time',
      '--log-level LEVEL        fatal|error|warn|info|debug|silent; info logs every request (default warn)',
      '-h, --help',
    ]) {
      expect(USAGE).toContain(`\n  ${line}`);
    }
  });
});
