// Dense AdamW and the gradient's sum of squares for the tfjs wasm backend, on the wasm heap
// (src/dense-adamw.ts has the contract): one pass over each parameter instead of tfjs's ~13
// elementwise kernels (each a full read and write of the tensor, on one thread), on all cores.
//
//   g  ← scale · g
//   m' ← β1·m + (1 − β1)·g
//   v' ← β2·v + (1 − β2)·g²
//   x' ← decay·x − step · m' / (√(v' · inv_bc2) + eps)      step = lr / (1 − β1^t), decay = 1 − lr·wd
//
// Outputs go to separate buffers (x', m', v'): tensors stay immutable, as tfjs expects.
#include <cmath>

#include "common.h"
#include "dense.h"

namespace mnemo {

void dense_adamw(const float* x, const float* m, const float* v, const float* g, float* xo, float* mo, float* vo,
                 int64_t n, const DenseAdamParams& p) {
  const float b1 = p.beta1, b2 = p.beta2, c1 = 1.0f - p.beta1, c2 = 1.0f - p.beta2;
  parallel_for(n, threads_for(n * 28), [&](int, int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
      const float gi = p.scale * g[i];
      const float mi = b1 * m[i] + c1 * gi;
      const float vi = b2 * v[i] + c2 * (gi * gi);
      mo[i] = mi;
      vo[i] = vi;
      xo[i] = p.decay * x[i] - p.step * (mi / (std::sqrt(vi * p.inv_bc2) + p.eps));
    }
  });
}

double sum_squares(const float* a, int64_t n) {
  const int threads = threads_for(n * 4);
  double part[64] = {0};
  parallel_for(n, threads, [&](int t, int64_t begin, int64_t end) {
    // 8 float lanes summed in float over blocks of 1,024, then into double: exact enough, and vectorised
    double acc = 0;
    for (int64_t b = begin; b < end; b += 1024) {
      const int64_t e = b + 1024 < end ? b + 1024 : end;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = b; i < e; i++) s += a[i] * a[i];
      acc += s;
    }
    part[t] = acc;
  });
  double total = 0;
  for (int t = 0; t < threads && t < 64; t++) total += part[t];
  return total;
}

}  // namespace mnemo
