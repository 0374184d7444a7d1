import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress } from './progress';

describe('Progress', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints plain lines off a terminal: the first tick and always the last, with count, unit and extra', () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      lines.push(String(s));
      return true;
    });
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const p = new Progress(3, '[run]', 'step');
    p.tick(1, 'loss 2.5');
    p.tick();
    p.tick(1, 'loss 1.0');
    expect(lines[0]).toMatch(/^\[run\] █+░+ 1\/3 .* step\/s ETA \d+s loss 2\.5\n$/);
    expect(lines.at(-1)).toMatch(/^\[run\] █{24} 3\/3 .* step\/s ETA 0s loss 1\.0\n$/);
    expect(lines).toHaveLength(2); // the middle tick is within 5 s of the first plain line
  });
});
