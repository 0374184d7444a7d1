/**
 * Optional normalisation before the product-key search, applied to each HALF separately
 * (each half is scored against its own sub-key table):
 *   none       raw queries and keys (Lample 2019 with BatchNorm folded away)
 *   layernorm  (q − mean) / √(var + ε) per query half, no affine (XLM / lucidrains variants)
 *   l2         q / ‖q‖ per query half
 *   qknorm     q / ‖q‖ per query half AND K / ‖K‖ per sub-key row ("Memory Layers at Scale":
 *              keeps scores bounded when a small model meets a large memory)
 * All are plain tfjs ops, so autodiff carries their gradients.
 */
import { ConfigError } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';

export type QueryNorm = 'none' | 'layernorm' | 'l2' | 'qknorm';
export const QUERY_NORMS: readonly QueryNorm[] = ['none', 'layernorm', 'l2', 'qknorm'];

const EPS = 1e-6;

export function checkQueryNorm(v: unknown, field = 'queryNorm'): QueryNorm {
  if (!(QUERY_NORMS as readonly unknown[]).includes(v)) {
    throw new ConfigError(field, `unknown normalisation '${String(v)}'; use one of ${QUERY_NORMS.join(', ')}`);
  }
  return v as QueryNorm;
}

function l2normLast(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), EPS)));
}

/** queries [B, H, dk] → normalised per half, same shape. */
export function normalizeQueries(queries: tf.Tensor3D, norm: QueryNorm): tf.Tensor3D {
  if (norm === 'none') return queries;
  return tf.tidy(() => {
    const [B, H, dk] = queries.shape;
    const halves = tf.reshape(queries, [B, H, 2, dk / 2]); // [B, H, 2, dk/2]
    let y: tf.Tensor;
    if (norm === 'layernorm') {
      const { mean, variance } = tf.moments(halves, -1, true);
      y = tf.div(tf.sub(halves, mean), tf.sqrt(tf.add(variance, EPS)));
    } else {
      y = l2normLast(halves);
    }
    return tf.reshape(y, [B, H, dk]) as tf.Tensor3D;
  });
}

/** subkeys [H, 2, n, dk/2] → unit rows under qknorm, unchanged otherwise. */
export function normalizeSubkeys(subkeys: tf.Tensor4D, norm: QueryNorm): tf.Tensor4D {
  if (norm !== 'qknorm') return subkeys;
  return tf.tidy(() => l2normLast(subkeys) as tf.Tensor4D);
}
