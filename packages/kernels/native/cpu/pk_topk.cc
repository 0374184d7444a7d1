// Fused product-key top-k on the CPU (docs/design.md §1); the TypeScript twin is
// src/ts/pk-topk.ts and both give identical results: float64 dot products summed in the same
// order and one total order for every selection (higher score, then lower id), so the same
// top-k sets in the same order. Scoring (s1 = K1 q1, s2 = K2 q2) runs on blocks of 4 queries of the same head,
// one query per AVX lane, 8 sub-key rows at a time (8 independent add chains hide the latency),
// with a separate multiply and add per step (no FMA), so every lane sums exactly like the scalar
// loop and the TS kernel. Per-half top-k filters rows by each lane's current k-th score
// (LaneTopK); the k² candidates are merged with a heap. (head, block of 4 batch rows) units
// are split across threads.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels.h"

namespace mnemo {

namespace {

// A candidate slot: score a[u] + b[v], id I1[u]·n + I2[v].
struct Cand {
  double s;
  int32_t id;
  int u, v;
};
// Heap order: x ranks after y (lower score, or equal score and higher id).
const auto worse = [](const Cand& x, const Cand& y) { return x.s < y.s || (x.s == y.s && x.id > y.id); };

constexpr int kLanes = 4;  // queries per block (one AVX register of doubles)

// A scored index; `better` is the total order of the whole kernel: higher score, then lower index.
struct Scored {
  double s;
  int32_t i;
};
inline bool better(const Scored& x, const Scored& y) { return x.s > y.s || (x.s == y.s && x.i < y.i); }

// Per-lane top-k of the rows' scores s[r][lane] (r < n), by threshold filtering: a lane keeps an
// unsorted buffer of at most 2k candidates and the score of its current k-th best; a row enters
// only if it beats that threshold (strictly: a later row has a higher index, so an equal score
// loses the tie). A full buffer is cut back to its best k (nth_element). Rejections dominate
// (about k·ln(n/k) rows enter), and 4 lanes are tested at once. The result, sorted by `better`,
// is the same set and order as sorted insertion of every row.
constexpr int kBufFactor = 2;  // buffer capacity in units of k: fewer cuts vs a looser threshold
struct LaneTopK {
  std::vector<Scored> buf[kLanes];
  double thr[kLanes];
  int k = 0;
  void init(int k_) {
    k = k_;
    for (auto& b : buf) b.reserve(static_cast<size_t>(kBufFactor * k_));
  }
  void cut(int l) {
    auto& b = buf[l];
    std::nth_element(b.begin(), b.begin() + (k - 1), b.end(), better);
    b.resize(static_cast<size_t>(k));
    double t = b[0].s;
    for (const Scored& x : b) t = x.s < t ? x.s : t;
    thr[l] = t;
  }
  // s: [n][4]; lanes < 4 are valid. out_s / out_i: [lane][k], sorted by `better`.
  void run(const double* s, int n, int lanes, double* out_s, int32_t* out_i) {
    for (int l = 0; l < lanes; l++) {
      buf[l].clear();
      for (int r = 0; r < k; r++) buf[l].push_back({s[r * kLanes + l], r});
      cut(l);
    }
    for (int l = lanes; l < kLanes; l++) thr[l] = 1.0 / 0.0;  // unused lanes never take a row
    for (int r = k; r < n; r++) {
      const double* row = s + r * kLanes;
      // four independent comparisons; the common case (no lane takes the row) is one branch
      if (!(row[0] > thr[0] || row[1] > thr[1] || row[2] > thr[2] || row[3] > thr[3])) continue;
      for (int l = 0; l < lanes; l++) {
        if (row[l] > thr[l]) {
          buf[l].push_back({row[l], r});
          if (static_cast<int>(buf[l].size()) == kBufFactor * k) cut(l);
        }
      }
    }
    for (int l = 0; l < lanes; l++) {
      auto& b = buf[l];
      if (static_cast<int>(b.size()) > k) std::nth_element(b.begin(), b.begin() + (k - 1), b.end(), better);
      std::sort(b.begin(), b.begin() + k, better);
      for (int t = 0; t < k; t++) {
        out_s[l * k + t] = b[t].s;
        out_i[l * k + t] = b[t].i;
      }
    }
  }
};

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
    std::vector<double> aAll(static_cast<size_t>(kLanes) * k), bAll(static_cast<size_t>(kLanes) * k);  // [4][k]
    std::vector<int32_t> i1All(static_cast<size_t>(kLanes) * k), i2All(static_cast<size_t>(kLanes) * k);
    LaneTopK sel;
    sel.init(k);
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
      sel.run(s1.data(), n, lanes, aAll.data(), i1All.data());  // per-half top-k, every lane
      sel.run(s2.data(), n, lanes, bAll.data(), i2All.data());
      for (int l = 0; l < lanes; l++) {
        const int64_t g = static_cast<int64_t>(b0 + l) * heads + h;
        const double* a = aAll.data() + l * k;
        const double* b = bAll.data() + l * k;
        const int32_t* i1 = i1All.data() + l * k;
        const int32_t* i2 = i2All.data() + l * k;
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
