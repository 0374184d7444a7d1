// Per-row optimizer updates, fused into the embedding-bag backward (src/optimizers.ts has the
// math). Each touched row is updated exactly once per step by the thread that owns it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace mnemo {

enum OptimizerKind : int { kSgd = 0, kAdagrad = 1, kAdam = 2 };
enum ClipKind : int { kClipNone = 0, kClipRow = 1, kClipGlobal = 2 };

// Unpacked from the Float64Array [kind, lr, beta1, beta2, eps, weightDecay, clip, maxNorm,
// rowWise, momentBf16] (the last two optional, default 0).
struct OptimizerParams {
  int kind;
  float lr, beta1, beta2, eps, weight_decay;
  int clip;
  float max_norm;
  int row_wise;     // Adam: 1 = one second moment per row (partial row-wise Adam)
  int moment_bf16;  // row-wise Adam: m stored as bfloat16
};

// Optimizer state arrays; only those of `kind` are non-null.
struct OptimizerState {
  float* accum;     // Adagrad Σ g²          [N, dv]
  float* moments;   // Adam (m, v) per row   [N, 2, dv]; row-wise Adam: m [N, dv]
  int32_t* steps;   // Adam per-row step t   [N]
  uint16_t* moments16;  // row-wise Adam with bf16 m: m [N, dv]
  float* row_v;     // row-wise Adam second moment per row [N]
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

// 1 − β1^t and 1 − β2^t; per-thread cache for small t (rows are touched a few times each, so
// the same t recurs and pow() would otherwise run twice per row).
inline void bias_corrections(float beta1, float beta2, int32_t t, double* bc1, double* bc2) {
  constexpr int kCache = 1024;
  static thread_local float c_b1 = -1.0f, c_b2 = -1.0f;
  static thread_local double c1[kCache], c2[kCache];
  if (c_b1 != beta1 || c_b2 != beta2) {
    double p1 = 1.0, p2 = 1.0;
    for (int i = 0; i < kCache; i++) {
      c1[i] = 1.0 - p1;  // i = t
      c2[i] = 1.0 - p2;
      p1 *= beta1;
      p2 *= beta2;
    }
    c_b1 = beta1;
    c_b2 = beta2;
  }
  if (t >= 0 && t < kCache) {
    *bc1 = c1[t];
    *bc2 = c2[t];
  } else {
    *bc1 = 1.0 - std::pow(static_cast<double>(beta1), t);
    *bc2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  }
}

// Lazy Adam with per-row bias correction (t = this row's step count after increment).  (Adam)
MNEMO_INLINE void adam_row(float* v, float* m1, float* m2, const float* g, int dim, int32_t t,
                           const OptimizerParams& o, float scale, float decay) {
  double bc1, bc2;
  bias_corrections(o.beta1, o.beta2, t, &bc1, &bc2);
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

// float32 → bfloat16, round to nearest even, branch-free so the m loop vectorises (NaN → qNaN).
MNEMO_INLINE uint16_t m_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : r);
}

// Partial row-wise Adam: per-element m, one second moment per row
//   v_r ← β2 v_r + (1−β2)·mean_c(g_c²);  V ← V·decay − lr·(m/bc1)/(√(v_r/bc2) + eps)
// M is float (fp32 m) or uint16_t (bf16 m, rounded once when stored).
template <typename M>
MNEMO_INLINE void adam_rowwise_row(float* v, M* m1, float* vr, const float* g, int dim, int32_t t,
                                   const OptimizerParams& o, float scale, float decay) {
  double bc1, bc2;
  bias_corrections(o.beta1, o.beta2, t, &bc1, &bc2);
  float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
  for (int c = 0; c < dim; c++) sq += g[c] * g[c];
  const float s = o.beta2 * *vr + (1.0f - o.beta2) * (scale * scale * sq / static_cast<float>(dim));
  *vr = s;
  // one scalar per row: lr / bc1 / (√(s/bc2) + eps)
  const float k = static_cast<float>(o.lr / bc1 / (std::sqrt(static_cast<double>(s) / bc2) + o.eps));
  const float b1 = o.beta1;
#pragma omp simd
  for (int c = 0; c < dim; c++) {
    const float gc = scale * g[c];
    float mc;
    if constexpr (sizeof(M) == 2) {
      mc = b1 * bf16_to_f32(m1[c]) + (1.0f - b1) * gc;
      m1[c] = m_to_bf16(mc);
    } else {
      mc = b1 * m1[c] + (1.0f - b1) * gc;
      m1[c] = mc;
    }
    v[c] = v[c] * decay - k * mc;
  }
}

}  // namespace mnemo
