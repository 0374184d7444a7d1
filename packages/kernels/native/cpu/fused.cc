// Fused float32 kernels of the model's elementwise chains, forward and backward, on all cores, on
// the wasm heap in place (src/fused-ops.ts has the ops, their tfjs fallbacks and the contract):
//
//   SwiGLU gate      y = silu(g) ⊙ u,  silu(g) = g·σ(g)
//                    dg = dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))),   du = dy ⊙ silu(g)
//   masked softmax   y = softmax(x + m) over the last axis (m broadcast over heads, and batch)
//                    dx = y ⊙ (dy − Σ_j dy_j·y_j)
//   RMSNorm          y = x · r · g,  r = 1/√(mean(x²) + eps) per row of D
//                    dx = r·(dy ⊙ g) − x · r³ · Σ_j(dy_j·g_j·x_j) / D,   dg = Σ_rows dy ⊙ x · r
//
// As tfjs ops each of these is 4–12 kernels and as many passes over the tensor, on one thread
// (tfjs-wasm); here one pass. exp is a Cody–Waite range reduction and a degree-6 polynomial
// (≤ 2 ulp on [−87, 88], exactly 0 below), written so that the loops vectorise without -ffast-math.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "fused.h"

namespace mnemo {

namespace {

MNEMO_INLINE float exp_f32(float x) {
  // selects, not branches: the loops vectorise (binding.gyp's -fno-trapping-math lets GCC
  // if-convert them; it changes no result, only assumes no FP trap handler, as in Node)
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  const float r = (xc * 1.44269504089f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float y = (xc - r * 0.693145751953125f) - r * 1.42860682030941723e-6f;  // x − r·ln 2, |y| ≤ ln2/2
  float p = 1.3888889e-3f;  // Σ y^i / i!, i ≤ 6, Horner
  p = p * y + 8.3333333e-3f;
  p = p * y + 4.1666667e-2f;
  p = p * y + 1.6666667e-1f;
  p = p * y + 0.5f;
  p = p * y + 1.0f;
  p = p * y + 1.0f;
  const int32_t bits = (static_cast<int32_t>(r) + 127) << 23;  // 2^r
  float scale;
  std::memcpy(&scale, &bits, 4);
  const float e = p * scale;
  return x < -87.0f ? 0.0f : e;  // exactly 0 below −87 (masked keys); NaN stays NaN
}

MNEMO_INLINE float sigmoid_f32(float g) { return 1.0f / (1.0f + exp_f32(-g)); }

MNEMO_SIMD_CLONES void silu_mul_range(const float* g, const float* u, float* y, int64_t b, int64_t e) {
#pragma omp simd
  for (int64_t i = b; i < e; i++) y[i] = g[i] * sigmoid_f32(g[i]) * u[i];
}

MNEMO_SIMD_CLONES void silu_mul_grad_range(const float* g, const float* u, const float* dy, float* dg, float* du,
                                           int64_t b, int64_t e) {
#pragma omp simd
  for (int64_t i = b; i < e; i++) {
    const float s = sigmoid_f32(g[i]);
    const float silu = g[i] * s;
    du[i] = dy[i] * silu;
    dg[i] = dy[i] * u[i] * (s + silu * (1.0f - s));
  }
}

MNEMO_SIMD_CLONES void softmax_row(const float* x, const float* m, float* y, int64_t S) {
  const float* z = x;  // the logits x + m, written into y first when there is a mask
  if (m) {
#pragma omp simd
    for (int64_t j = 0; j < S; j++) y[j] = x[j] + m[j];
    z = y;
  }
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < S; j++) mx = z[j] > mx ? z[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < S; j++) {
    const float e = exp_f32(z[j] - mx);
    y[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < S; j++) y[j] *= inv;
}

MNEMO_SIMD_CLONES void softmax_grad_row(const float* y, const float* dy, float* dx, int64_t S) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < S; j++) dot += dy[j] * y[j];
#pragma omp simd
  for (int64_t j = 0; j < S; j++) dx[j] = y[j] * (dy[j] - dot);
}

MNEMO_SIMD_CLONES float mean_square(const float* x, int64_t D) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < D; j++) s += x[j] * x[j];
  return s / static_cast<float>(D);
}

MNEMO_SIMD_CLONES void rms_norm_rows(const float* x, const float* g, float* y, int64_t b, int64_t e, int64_t D,
                                     float eps) {
  for (int64_t i = b; i < e; i++) {
    const float* xr = x + i * D;
    float* yr = y + i * D;
    const float r = 1.0f / std::sqrt(mean_square(xr, D) + eps);
#pragma omp simd
    for (int64_t j = 0; j < D; j++) yr[j] = xr[j] * r * g[j];
  }
}

MNEMO_SIMD_CLONES void rms_norm_grad_rows(const float* x, const float* g, const float* dy, float* dx, float* dg,
                                          int64_t b, int64_t e, int64_t D, float eps) {
  for (int64_t i = b; i < e; i++) {
    const float* xr = x + i * D;
    const float* dyr = dy + i * D;
    float* dxr = dx + i * D;
    const float r = 1.0f / std::sqrt(mean_square(xr, D) + eps);
    float a = 0.0f;
#pragma omp simd reduction(+ : a)
    for (int64_t j = 0; j < D; j++) a += dyr[j] * g[j] * xr[j];
    const float c = r * r * r * a / static_cast<float>(D);
#pragma omp simd
    for (int64_t j = 0; j < D; j++) {
      dxr[j] = r * dyr[j] * g[j] - xr[j] * c;
      dg[j] += dyr[j] * xr[j] * r;
    }
  }
}

// Threads for a pass touching `floats` values: one below 256K (a thread's start costs more).
int threads_for_floats(int64_t floats) { return floats < (int64_t{1} << 18) ? 1 : num_threads(); }

}  // namespace

void silu_mul(const float* g, const float* u, float* y, int64_t n) {
  parallel_for(n, threads_for_floats(3 * n), [&](int, int64_t b, int64_t e) { silu_mul_range(g, u, y, b, e); });
}

void silu_mul_grad(const float* g, const float* u, const float* dy, float* dg, float* du, int64_t n) {
  parallel_for(n, threads_for_floats(5 * n), [&](int, int64_t b, int64_t e) { silu_mul_grad_range(g, u, dy, dg, du, b, e); });
}

void masked_softmax(const float* x, const float* mask, float* y, int64_t batch, int64_t heads, int64_t rows, int64_t S,
                    bool mask_per_batch) {
  const int64_t n_rows = batch * heads * rows;
  parallel_for(n_rows, threads_for_floats(2 * n_rows * S), [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const int64_t r = i % rows, bi = i / (heads * rows);
      const float* m = mask ? mask + ((mask_per_batch ? bi * rows : 0) + r) * S : nullptr;
      softmax_row(x + i * S, m, y + i * S, S);
    }
  });
}

void softmax_grad(const float* y, const float* dy, float* dx, int64_t n_rows, int64_t S) {
  parallel_for(n_rows, threads_for_floats(3 * n_rows * S), [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) softmax_grad_row(y + i * S, dy + i * S, dx + i * S, S);
  });
}

void rms_norm(const float* x, const float* g, float* y, int64_t n_rows, int64_t D, float eps) {
  parallel_for(n_rows, threads_for_floats(2 * n_rows * D), [&](int, int64_t b, int64_t e) { rms_norm_rows(x, g, y, b, e, D, eps); });
}

void rms_norm_grad(const float* x, const float* g, const float* dy, float* dx, float* dg, int64_t n_rows, int64_t D,
                   float eps) {
  const int threads = static_cast<int>(std::min<int64_t>(threads_for_floats(3 * n_rows * D), std::max<int64_t>(n_rows, 1)));
  std::vector<float> partial(static_cast<size_t>(threads) * D, 0.0f);  // dg per thread, summed in thread order
  parallel_for(n_rows, threads, [&](int t, int64_t b, int64_t e) {
    rms_norm_grad_rows(x, g, dy, dx, partial.data() + t * D, b, e, D, eps);
  });
  for (int64_t j = 0; j < D; j++) {
    float s = 0.0f;
    for (int t = 0; t < threads; t++) s += partial[t * D + j];
    dg[j] = s;
  }
}

}  // namespace mnemo
