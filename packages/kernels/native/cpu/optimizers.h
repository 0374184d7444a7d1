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

// Adam's per-row scalars at the row's step t (after its increment), read from a table for small
// t (rows are touched a few times each, so t is small and recurs: no pow(), no division per row),
// computed beyond it:  step = lr / (1 − β1^t),  inv_bc2 = 1 / (1 − β2^t),  inv_sqrt_bc2 = √inv_bc2
struct AdamSteps {
  static constexpr int kTable = 1024;
  float lr = -1.0f, beta1 = -1.0f, beta2 = -1.0f;  // the parameters the table was built for
  float step[kTable], inv_bc2[kTable], inv_sqrt_bc2[kTable];

  // (re)build the table when the optimizer's parameters changed
  void init(const OptimizerParams& o) {
    if (o.lr == lr && o.beta1 == beta1 && o.beta2 == beta2) return;
    lr = o.lr;
    beta1 = o.beta1;
    beta2 = o.beta2;
    double p1 = 1.0, p2 = 1.0;  // β^t
    for (int t = 0; t < kTable; t++) {
      fill(lr, 1.0 - p1, 1.0 - p2, &step[t], &inv_bc2[t], &inv_sqrt_bc2[t]);
      p1 *= beta1;
      p2 *= beta2;
    }
  }
  MNEMO_INLINE void get(int32_t t, float* s, float* ib2, float* isb2) const {
    if (t >= 0 && t < kTable) {
      *s = step[t];
      *ib2 = inv_bc2[t];
      *isb2 = inv_sqrt_bc2[t];
    } else {
      fill(lr, 1.0 - std::pow(static_cast<double>(beta1), t), 1.0 - std::pow(static_cast<double>(beta2), t), s, ib2, isb2);
    }
  }

 private:
  static void fill(double lr, double bc1, double bc2, float* s, float* ib2, float* isb2) {
    *s = static_cast<float>(lr / bc1);
    *ib2 = static_cast<float>(1.0 / bc2);
    *isb2 = static_cast<float>(1.0 / std::sqrt(bc2));
  }
};

// Lazy Adam with per-row bias correction (t = this row's step count after increment).  (Adam)
MNEMO_INLINE void adam_row(float* v, float* m1, float* m2, const float* g, int dim, int32_t t,
                           const OptimizerParams& o, const AdamSteps& st, float scale, float decay) {
  float step, inv_bc2, inv_sqrt_bc2;
  st.get(t, &step, &inv_bc2, &inv_sqrt_bc2);
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
  return static_cast<uint16_t>(f != f ? 0x7fc0u : r);  // one unordered compare per lane
}

// Partial row-wise Adam: per-element m, one second moment per row
//   v_r ← β2 v_r + (1−β2)·mean_c(g_c²);  V ← V·decay − lr·(m/bc1)/(√(v_r/bc2) + eps)
// g_sq = Σ_c g_c² (summed by the caller while it built g). M is float (fp32 m) or uint16_t
// (bf16 m, rounded once when stored).
template <typename M>
MNEMO_INLINE void adam_rowwise_row(float* v, M* m1, float* vr, const float* g, float g_sq, int dim, int32_t t,
                                   const OptimizerParams& o, const AdamSteps& st, float scale, float decay) {
  float step, inv_bc2, inv_sqrt_bc2;
  st.get(t, &step, &inv_bc2, &inv_sqrt_bc2);
  const float s = o.beta2 * *vr + (1.0f - o.beta2) * (scale * scale * g_sq / static_cast<float>(dim));
  *vr = s;
  // one scalar per row: lr / bc1 / (√(s/bc2) + eps)
  const float k = step / (std::sqrt(s * inv_bc2) + o.eps);
  const float b1 = o.beta1, gb = (1.0f - b1) * scale;  // m ← β1 m + (1−β1)·scale·g
#pragma omp simd
  for (int c = 0; c < dim; c++) {
    float mc;
    if constexpr (sizeof(M) == 2) {
      mc = b1 * bf16_to_f32(m1[c]) + gb * g[c];
      m1[c] = m_to_bf16(mc);
    } else {
      mc = b1 * m1[c] + gb * g[c];
      m1[c] = mc;
    }
    v[c] = v[c] * decay - k * mc;
  }
}

}  // namespace mnemo
