/**
 * Identity and same-dtype Cast share their input's buffer on the native dense path (wasm-copies.ts):
 * same heap offset, the values survive disposing either tensor, dtype-changing casts still convert,
 * and the wasm path copies as tfjs-wasm does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, nativeDense, setDensePath } from './index';

const native = nativeDense();
if (!native.addon) console.log(`[wasm-copies.test] native dense path skipped: ${native.reason}`);
const offset = (t: tf.Tensor) =>
  (tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } }).dataIdMap.get(t.dataId).memoryOffset;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});
afterAll(() => {
  setDensePath();
});

describe('no-copy Identity and Cast', () => {
  it.runIf(native.addon)('share the buffer on the native path; the data lives while either tensor does', () => {
    setDensePath('native');
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([1, 2, 3]);
    const c = x.clone();
    const f = tf.cast(x, 'float32');
    expect(offset(c)).toBe(offset(x));
    expect(offset(f)).toBe(offset(x));
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    c.dispose();
    expect(Array.from(f.dataSync())).toEqual([1, 2, 3]);
    f.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // a cast that changes the dtype converts
    const i = tf.tensor1d([1.7, -2.2, 3.5]);
    const j = tf.cast(i, 'int32');
    expect(j.dtype).toBe('int32');
    expect(Array.from(j.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([i, j]);
  });

  it('copy on the wasm path, as tfjs-wasm does', () => {
    setDensePath('wasm');
    const x = tf.tensor1d([4, 5]);
    const c = x.clone();
    expect(offset(c)).not.toBe(offset(x));
    expect(Array.from(c.dataSync())).toEqual([4, 5]);
    tf.dispose([x, c]);
  });

  it.runIf(native.addon)('leave gradients as they were (d/dx of Σ x·cast(y) through clones)', () => {
    const grads = (['wasm', 'native'] as const).map((p) => {
      setDensePath(p);
      const x = tf.tensor2d([
        [1, -2],
        [3, 0.5],
      ]);
      const y = tf.tensor2d([
        [0.3, 2],
        [-1, 4],
      ]);
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a.clone(), tf.cast(y, 'float32'))))(x);
      const out = Array.from(g.dataSync());
      tf.dispose([x, y, g]);
      return out;
    });
    expect(grads[1]).toEqual(grads[0]);
  });
});
