import { describe, expect, it } from 'vitest';
import { LruCache } from './store-cache';

describe('LruCache', () => {
  it('evicts the least recently used entry and counts hits', () => {
    const c = new LruCache<number, string>(2);
    c.set(1, 'a');
    c.set(2, 'b');
    expect(c.get(1)).toBe('a'); // 1 is now the most recent
    c.set(3, 'c'); // evicts 2
    expect(c.has(2)).toBe(false);
    expect(c.get(1)).toBe('a');
    expect(c.get(3)).toBe('c');
    expect(c.get(2)).toBeUndefined();
    expect([c.hits, c.misses, c.size]).toEqual([3, 1, 2]);
  });
  it('holds nothing at capacity 0', () => {
    const c = new LruCache<number, number>(0);
    c.set(1, 1);
    expect(c.get(1)).toBeUndefined();
  });
});
