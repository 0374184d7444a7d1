// Fused product-key top-k on the CPU (algorithms.md §1); the TypeScript twin is
// src/ts/pk-topk.ts and both give identical results: float64 dot products summed in the same
// order, the same sorted-insertion buffers, the same tie rule (higher score, then lower id).
// Scoring (s1 = K1 q1, s2 = K2 q2) dominates: it runs on blocks of 4 queries of the same head,
// one query per AVX lane, 8 sub-key rows at a time (8 independent add chains hide the latency),
// with a separate multiply and add per step (no FMA), so every lane sums exactly like the scalar
// loop and the TS kernel. (head, block of 4 batch rows) units are split across threads.
#include <immintrin.h>

#include <algorithm>
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

// A candidate slot: score a[u] + b[v], id I1[u]·n + I2[v].
struct Cand {
  double s;
  int32_t id;
  int u, v;
};
// Heap order: x ranks after y (lower score, or equal score and higher id).
const auto worse = [](const Cand& x, const Cand& y) { return x.s < y.s || (x.s == y.s && x.id > y.id); };

constexpr int kLanes = 4;  // queries per block (one AVX register of doubles)

// out[r][l] = Σ_c qT[c][l] · K[r][c], c in order, for r < n, l < 4. qT: [half][4], K: [n, half].
void score_block_scalar(const double* qT, const float* K, int n, int half, double* out) {
  for (int r = 0; r < n; r++) {
    for (int l = 0; l < kLanes; l++) {
      double x = 0.0;
      for (int c = 0; c < half; c++) x += qT[c * kLanes + l] * static_cast<double>(K[static_cast<int64_t>(r) * half + c]);
      out[r * kLanes + l] = x;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx"))) void score_block_avx(const double* qT, const float* K, int n, int half, double* out) {
  int r = 0;
  for (; r + 8 <= n; r += 8) {  // 8 rows in flight
    __m256d acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_pd();
    const float* k0 = K + static_cast<int64_t>(r) * half;
    for (int c = 0; c < half; c++) {
      const __m256d q = _mm256_loadu_pd(qT + c * kLanes);
      for (int j = 0; j < 8; j++) {
        const __m256d kv = _mm256_set1_pd(static_cast<double>(k0[static_cast<int64_t>(j) * half + c]));
        acc[j] = _mm256_add_pd(acc[j], _mm256_mul_pd(q, kv));
      }
    }
    for (int j = 0; j < 8; j++) _mm256_storeu_pd(out + (r + j) * kLanes, acc[j]);
  }
  for (; r < n; r++) {
    __m256d acc = _mm256_setzero_pd();
    const float* kr = K + static_cast<int64_t>(r) * half;
    for (int c = 0; c < half; c++) {
      acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(qT + c * kLanes), _mm256_set1_pd(static_cast<double>(kr[c]))));
    }
    _mm256_storeu_pd(out + r * kLanes, acc);
  }
}
const bool kHasAvx = __builtin_cpu_supports("avx");
#else
void score_block_avx(const double* qT, const float* K, int n, int half, double* out) {
  score_block_scalar(qT, K, n, half, out);
}
const bool kHasAvx = false;
#endif

}  // namespace

void pk_topk(const float* queries, const float* subkeys, int batch, int heads, int n, int dk,
             int k, float* scores, int32_t* ids) {
  const int half = dk / 2;
  const int64_t blocksPerHead = (batch + kLanes - 1) / kLanes;
  const int64_t units = blocksPerHead * heads;  // (head, block of ≤ 4 batch rows)
  const int threads = threads_for(static_cast<int64_t>(batch) * heads * n * dk * 4);
  parallel_for(units, threads, [&](int, int64_t u0, int64_t u1) {
    std::vector<double> q1T(static_cast<size_t>(half) * kLanes), q2T(static_cast<size_t>(half) * kLanes);
    std::vector<double> s1(static_cast<size_t>(n) * kLanes), s2(static_cast<size_t>(n) * kLanes);  // [n][4]
    std::vector<double> a(k), b(k);
    std::vector<int32_t> i1(k), i2(k);
    std::vector<Cand> heap;
    heap.reserve(k);
    for (int64_t unit = u0; unit < u1; unit++) {
      const int h = static_cast<int>(unit / blocksPerHead);
      const int b0 = static_cast<int>(unit % blocksPerHead) * kLanes;
      const int lanes = std::min(kLanes, batch - b0);
      for (int l = 0; l < kLanes; l++) {  // gather the block's query halves, transposed: [half][4]
        const float* q = queries + (static_cast<int64_t>(b0 + (l < lanes ? l : 0)) * heads + h) * dk;
        for (int c = 0; c < half; c++) {
          q1T[c * kLanes + l] = q[c];
          q2T[c * kLanes + l] = q[half + c];
        }
      }
      const float* k1 = subkeys + static_cast<int64_t>(h) * 2 * n * half;  // [n, dk/2]
      const float* k2 = k1 + static_cast<int64_t>(n) * half;               // [n, dk/2]
      if (kHasAvx) {
        score_block_avx(q1T.data(), k1, n, half, s1.data());
        score_block_avx(q2T.data(), k2, n, half, s2.data());
      } else {
        score_block_scalar(q1T.data(), k1, n, half, s1.data());
        score_block_scalar(q2T.data(), k2, n, half, s2.data());
      }
      for (int l = 0; l < lanes; l++) {
        const int64_t g = static_cast<int64_t>(b0 + l) * heads + h;
        int la = 0, lb = 0;
        for (int r = 0; r < n; r++) {  // per-half top-k
          la = insert_sorted(a.data(), i1.data(), la, k, s1[r * kLanes + l], r);
          lb = insert_sorted(b.data(), i2.data(), lb, k, s2[r * kLanes + l], r);
        }
        // The k² candidates a[u] + b[v] form k rows, each already sorted by (score desc, id asc)
        // (b is descending, ties by ascending index); a k-way merge with a heap pops the final
        // top-k in O(k log k). (score, id) is a total order, so the result is the same as
        // scanning all k² candidates.
        heap.clear();
        for (int u = 0; u < k; u++) heap.push_back({a[u] + b[0], i1[u] * n + i2[0], u, 0});
        std::make_heap(heap.begin(), heap.end(), worse);
        for (int t = 0; t < k; t++) {
          std::pop_heap(heap.begin(), heap.end(), worse);
          const Cand c = heap.back();
          heap.pop_back();
          scores[g * k + t] = static_cast<float>(c.s);
          ids[g * k + t] = c.id;
          if (c.v + 1 < k) {
            heap.push_back({a[c.u] + b[c.v + 1], i1[c.u] * n + i2[c.v + 1], c.u, c.v + 1});
            std::push_heap(heap.begin(), heap.end(), worse);
          }
        }
      }
    }
  });
}

}  // namespace mnemo
