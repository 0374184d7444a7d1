// Per-row optimizer updates, fused into the embedding-bag backward (src/optimizers.ts has the
// math). Each touched row is updated exactly once per step by the thread that owns it.
#pragma once

#include <cmath>
#include <cstdint>

#include "common.h"

namespace mnemo {

enum OptimizerKind : int { kSgd = 0, kAdagrad = 1, kAdam = 2 };
enum ClipKind : int { kClipNone = 0, kClipRow = 1, kClipGlobal = 2 };

// Unpacked from the Float64Array [kind, lr, beta1, beta2, eps, weightDecay, clip, maxNorm].
struct OptimizerParams {
  int kind;
  float lr, beta1, beta2, eps, weight_decay;
  int clip;
  float max_norm;
};

// Optimizer state arrays; only those of `kind` are non-null.
struct OptimizerState {
  float* accum;     // Adagrad Σ g²          [N, dv]
  float* moments;   // Adam (m, v) per row   [N, 2, dv]
  int32_t* steps;   // Adam per-row step t   [N]
};

// v ← v·decay − lr·scale·g                                                      (SGD)
MNEMO_INLINE void sgd_row(float* v, const float* g, int dim, float lr, float scale, float decay) {
  const float a = lr * scale;
#pragma omp simd
  for (int c = 0; c < dim; c++) v[c] = v[c] * decay - a * g[c];
}

// A ← A + g²; v ← v·decay − lr·g / (√A + eps)                                   (Adagrad)
MNEMO_INLINE void adagrad_row(float* v, float* acc, const float* g, int dim, float lr, float scale,
                              float decay, float eps) {
#pragma omp simd
  for (int c = 0; c < dim; c++) {
    const float gc = scale * g[c];
    const float a = acc[c] + gc * gc;
    acc[c] = a;
    v[c] = v[c] * decay - lr * gc / (std::sqrt(a) + eps);
  }
}

// Lazy Adam with per-row bias correction (t = this row's step count after increment).  (Adam)
MNEMO_INLINE void adam_row(float* v, float* m1, float* m2, const float* g, int dim, int32_t t,
                           const OptimizerParams& o, float scale, float decay) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), t);
  const float step = static_cast<float>(o.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float b1 = o.beta1, b2 = o.beta2, eps = o.eps;
#pragma omp simd
  for (int c = 0; c < dim; c++) {
    const float gc = scale * g[c];
    const float m = b1 * m1[c] + (1.0f - b1) * gc;
    const float s = b2 * m2[c] + (1.0f - b2) * gc * gc;
    m1[c] = m;
    m2[c] = s;
    v[c] = v[c] * decay - step * m / (std::sqrt(s) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace mnemo
