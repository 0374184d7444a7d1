// Backward of the product-key search (docs/design.md §1). For every selected slot t of (b, h),
// with g = dL/dscore[b,h,t] and (i, j) = (id div n, id mod n):
//   dq1[b,h] += g · K1[h,i]     dK1[h,i] += g · q1[b,h]
//   dq2[b,h] += g · K2[h,j]     dK2[h,j] += g · q2[b,h]
// The work splits into 2·H independent units (head h, half s): unit (h, s) is the only writer
// of dq[:, h, s-half] and of dK_s[h], so threads never share an output row and no atomics are
// needed. Within a unit, b and t run in order, so the sums are deterministic. The TypeScript
// twin is src/ts/pk-backward.ts.
#include "common.h"
#include "kernels.h"

namespace mnemo {

void pk_backward(const float* grad, const int32_t* ids, const float* queries, const float* subkeys,
                 int batch, int heads, int n, int dk, int k, float* dq, float* dkeys) {
  const int half = dk / 2;
  const int64_t work = static_cast<int64_t>(batch) * heads * k * dk * 4;
  parallel_for(2 * heads, threads_for(work), [&](int, int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) {
      const int h = static_cast<int>(u / 2);
      const int s = static_cast<int>(u % 2);  // 0: first half (K1, digit i), 1: second (K2, j)
      const float* K = subkeys + (static_cast<int64_t>(h) * 2 + s) * n * half;  // [n, half]
      float* dK = dkeys + (static_cast<int64_t>(h) * 2 + s) * n * half;         // [n, half]
      for (int b = 0; b < batch; b++) {
        const int64_t bh = static_cast<int64_t>(b) * heads + h;
        const float* q = queries + bh * dk + s * half;  // [half]
        float* gq = dq + bh * dk + s * half;            // [half]
        const float* g = grad + bh * k;                 // [k]
        const int32_t* id = ids + bh * k;               // [k]
        for (int t = 0; t < k; t++) {
          const float gt = g[t];
          if (gt == 0.0f) continue;
          const int32_t row = s == 0 ? id[t] / n : id[t] % n;
          const float* kr = K + static_cast<int64_t>(row) * half;
          float* dkr = dK + static_cast<int64_t>(row) * half;
#pragma omp simd
          for (int c = 0; c < half; c++) {
            gq[c] += gt * kr[c];
            dkr[c] += gt * q[c];
          }
        }
      }
    }
  });
}

}  // namespace mnemo
