// Fused product-key top-k on the CPU (algorithms.md §1); the TypeScript twin is
// src/ts/pk-topk.ts and both give identical results: float64 dot products summed in the same
// order, the same sorted-insertion buffers, the same tie rule (higher score, then lower id).
// (b, h) pairs are split across threads.
#include <vector>

#include "kernels.h"

namespace mnemo {

namespace {

// Insert (s, i) into descending buffers of length len, capacity cap; returns the new length.
int insert_sorted(double* sc, int32_t* id, int len, int cap, double s, int32_t i) {
  if (len == cap) {
    const double ls = sc[cap - 1];
    if (s < ls || (s == ls && i > id[cap - 1])) return len;
  }
  int p = len < cap ? len : cap - 1;
  while (p > 0) {
    const double ps = sc[p - 1];
    if (ps > s || (ps == s && id[p - 1] < i)) break;
    sc[p] = ps;
    id[p] = id[p - 1];
    p--;
  }
  sc[p] = s;
  id[p] = i;
  return len < cap ? len + 1 : len;
}

}  // namespace

void pk_topk(const float* queries, const float* subkeys, int batch, int heads, int n, int dk,
             int k, float* scores, int32_t* ids) {
  const int half = dk / 2;
  const int64_t pairs = static_cast<int64_t>(batch) * heads;
  const int threads = threads_for(pairs * n * dk * 4);
  parallel_for(pairs, threads, [&](int, int64_t g0, int64_t g1) {
    std::vector<double> s1(n), s2(n), a(k), b(k), fs(k);
    std::vector<int32_t> i1(k), i2(k), fi(k);
    for (int64_t g = g0; g < g1; g++) {
      const int h = static_cast<int>(g % heads);
      const float* q = queries + g * dk;                                // [dk]
      const float* k1 = subkeys + static_cast<int64_t>(h) * 2 * n * half;  // [n, dk/2]
      const float* k2 = k1 + static_cast<int64_t>(n) * half;               // [n, dk/2]
      for (int r = 0; r < n; r++) {  // s1 = K1 q1, s2 = K2 q2
        double x = 0.0, y = 0.0;
        for (int c = 0; c < half; c++) {
          x += static_cast<double>(q[c]) * k1[static_cast<int64_t>(r) * half + c];
          y += static_cast<double>(q[half + c]) * k2[static_cast<int64_t>(r) * half + c];
        }
        s1[r] = x;
        s2[r] = y;
      }
      int la = 0, lb = 0;
      for (int r = 0; r < n; r++) {  // per-half top-k
        la = insert_sorted(a.data(), i1.data(), la, k, s1[r], r);
        lb = insert_sorted(b.data(), i2.data(), lb, k, s2[r], r);
      }
      int lf = 0;  // k² candidates, pruned: b is descending
      for (int u = 0; u < k; u++) {
        if (lf == k && a[u] + b[0] < fs[k - 1]) break;
        for (int v = 0; v < k; v++) {
          const double s = a[u] + b[v];
          if (lf == k && s < fs[k - 1]) break;
          lf = insert_sorted(fs.data(), fi.data(), lf, k, s, i1[u] * n + i2[v]);
        }
      }
      for (int t = 0; t < k; t++) {
        scores[g * k + t] = static_cast<float>(fs[t]);
        ids[g * k + t] = fi[t];
      }
    }
  });
}

}  // namespace mnemo
