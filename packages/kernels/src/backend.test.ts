import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@mnemo/core';
import { BackendError } from '@mnemo/core';
import { backendInfo, initBackend, parseBackendChoice } from './index';

describe('tensor backend selection', () => {
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  const saved = process.env.MNEMO_BACKEND;
  afterAll(() => {
    if (saved === undefined) delete process.env.MNEMO_BACKEND;
    else process.env.MNEMO_BACKEND = saved;
  });

  it('auto picks the best backend that loads and says which', async () => {
    delete process.env.MNEMO_BACKEND;
    const info = await initBackend({ log });
    // tfjs-node(-gpu) cannot be installed here, so auto must land on wasm and say it skipped tensorflow.
    expect(['tensorflow', 'wasm']).toContain(info.name);
    expect(tf.getBackend()).toBe(info.name);
    expect(logs.at(-1)).toMatch(new RegExp(`tensor backend: ${info.name} via`));
    if (info.name === 'wasm') expect(info.skipped[0]).toMatch(/^tensorflow:/);
    expect(backendInfo()).toBe(info);
  });

  it('honours an explicit choice and the MNEMO_BACKEND override', async () => {
    const cpu = await initBackend({ backend: 'cpu', log });
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    process.env.MNEMO_BACKEND = 'wasm';
    const wasm = await initBackend({ log });
    expect(wasm.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    // the wasm backend computes real results
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(Array.from(y.dataSync())).toEqual([11]);
    delete process.env.MNEMO_BACKEND;
    const auto = await initBackend({ log: false });
    expect(auto.requested).toBe('auto');
  });

  it('rejects unknown names, naming the field', () => {
    expect(() => parseBackendChoice('webgl')).toThrow(ConfigError);
    expect(() => parseBackendChoice('webgl', 'MNEMO_BACKEND')).toThrow(/MNEMO_BACKEND: unknown backend 'webgl'/);
    expect(parseBackendChoice(' WASM ')).toBe('wasm');
  });

  it('an explicit backend that cannot load is an error, not a silent fallback', async () => {
    const req = createRequire(import.meta.url);
    const loads = (pkg: string) => {
      try {
        req(pkg);
        return true;
      } catch {
        return false;
      }
    };
    if (loads('@tensorflow/tfjs-node-gpu') || loads('@tensorflow/tfjs-node')) {
      console.log('skip: a tfjs-node backend loads on this machine, so there is no failure to see');
      return;
    }
    await expect(initBackend({ backend: 'tensorflow', log })).rejects.toThrow(BackendError);
    await expect(initBackend({ backend: 'tensorflow', log })).rejects.toThrow(/tfjs-node-gpu/);
  });
});

describe('gradients', () => {
  it('initBackend registers the gradients of every tfjs op (tfjs-core alone has none)', async () => {
    await initBackend({ log: false });
    expect(tf.getGradient('Sum')).toBeDefined();
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, -2, 3]));
    expect(Array.from(g.dataSync())).toEqual([2, -4, 6]);
  });
});

describe('wasm BatchMatMul with transposed operands', () => {
  it('equals the cpu backend for every transpose combination, batched too, and keeps gradients', async () => {
    const a = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const b = [
      [1, -1],
      [2, 0.5],
      [-3, 1],
    ];
    const cases: Array<[number[][] | number[][][], number[][] | number[][][], boolean, boolean]> = [
      [a, b, false, false],
      [
        a,
        [
          [1, 2, -3],
          [-1, 0.5, 1],
        ],
        false,
        true,
      ],
      [
        [
          [1, 4],
          [2, 5],
          [3, 6],
        ],
        b,
        true,
        false,
      ] as never,
      [
        [
          [1, 4],
          [2, 5],
          [3, 6],
        ],
        [
          [1, 2, -3],
          [-1, 0.5, 1],
        ],
        true,
        true,
      ] as never,
    ];
    const results: Record<string, number[][]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend({ backend, log: false });
      results[backend] = cases.map(([x, y, ta, tb]) =>
        Array.from(tf.matMul(tf.tensor(x as number[][]) as tf.Tensor2D, tf.tensor(y as number[][]) as tf.Tensor2D, ta, tb).dataSync()),
      );
      const batched = tf.matMul(tf.ones([3, 4, 2]), tf.ones([3, 5, 4]), true, true);
      expect(batched.shape).toEqual([3, 2, 5]);
      expect(Array.from(batched.dataSync()).every((v) => v === 4)).toBe(true);
      const g = tf.grad((w: tf.Tensor) => tf.sum(tf.matMul(tf.tensor2d(a), w as tf.Tensor2D)))(tf.tensor2d(b));
      expect(Array.from(g.dataSync())).toEqual([5, 5, 7, 7, 9, 9]); // dW = aᵀ · 1
    }
    expect(results.wasm).toEqual(results.cpu);
    expect(results.cpu![0]).toEqual([-4, 3, -4, 4.5]);
    await initBackend({ log: false });
  });
});
