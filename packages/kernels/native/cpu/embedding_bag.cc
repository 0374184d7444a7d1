// Embedding bag on the CPU: forward, fused backward + optimizer, and the roofline loop.
// algorithms.md §2.4; the TypeScript twin is src/ts/embedding-bag.ts.
//
// Forward: bags are split across threads; each thread walks its positions in order and
// prefetches the row PF positions ahead, so ~PF random rows are in flight per core.
// Backward without float atomics: positions are radix-sorted by row (histogram → prefix sum →
// scatter, per 11-bit digit), which yields the reverse table "which (b, j) read row r" as runs;
// each run (= one touched row) is then owned by one thread, which reads V[r] once, writes
// gw for every position in the run, sums gV[r] in a [dv] register of scratch, and applies the
// optimizer to V[r] and its state — no N-sized gradient, no atomics.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels.h"

// The bag kernels' clones dispatch by CPU FEATURES (x86-64-v3 = AVX2, FMA, BMI2...):
// common.h's "arch=haswell" clone is chosen by CPU model (__builtin_cpu_is), so AMD CPUs with
// AVX2 ran the baseline SSE2 clone. GCC ≥ 12 knows the feature-level names.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && __GNUC__ >= 12
#undef MNEMO_SIMD_CLONES
#define MNEMO_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

namespace mnemo {

namespace {

int kPrefetchRows = 8;      // rows ahead (forward and roofline)
int kPrefetchRowsBwd = 12;  // touched rows ahead (backward: V and optimizer state)

MNEMO_SIMD_CLONES
void forward_range(const void* values, int dtype, int dim, const int32_t* ids, const float* w,
                   int bag_size, float* out, int64_t b0, int64_t b1, float* scratch) {
  const int64_t row_bytes = static_cast<int64_t>(dim) * elem_bytes(dtype);
  const char* base = static_cast<const char*>(values);
  const int64_t p_end = b1 * bag_size;
  for (int64_t q = b0 * bag_size; q < std::min(b0 * bag_size + kPrefetchRows, p_end); q++) {
    if (ids[q] >= 0) prefetch_row(base + ids[q] * row_bytes, row_bytes);
  }
  for (int64_t b = b0; b < b1; b++) {
    float* o = out + b * dim;  // [dv]
    for (int c = 0; c < dim; c++) o[c] = 0.0f;
    for (int j = 0; j < bag_size; j++) {
      const int64_t p = b * bag_size + j;
      const int64_t q = p + kPrefetchRows;
      if (q < p_end && ids[q] >= 0) prefetch_row(base + ids[q] * row_bytes, row_bytes);
      const int32_t r = ids[p];
      if (r < 0) continue;
      const float wt = w[p];
      const float* v = load_row(values, dtype, dim, r, scratch);
#pragma omp simd
      for (int c = 0; c < dim; c++) o[c] += wt * v[c];
    }
  }
}

MNEMO_SIMD_CLONES
void roofline_range(const float* values, int dim, const int32_t* ids, int bag_size, float* out,
                    int64_t b0, int64_t b1, bool prefetch) {
  const int64_t p_end = b1 * bag_size;
  for (int64_t b = b0; b < b1; b++) {
    float* o = out + b * dim;
    for (int c = 0; c < dim; c++) o[c] = 0.0f;
    for (int j = 0; j < bag_size; j++) {
      const int64_t p = b * bag_size + j;
      if (prefetch) {
        const int64_t q = p + kPrefetchRows;
        if (q < p_end && ids[q] >= 0) prefetch_row(values + static_cast<int64_t>(ids[q]) * dim, dim * 4);
      }
      if (ids[p] < 0) continue;
      const float* v = values + static_cast<int64_t>(ids[p]) * dim;
#pragma omp simd
      for (int c = 0; c < dim; c++) o[c] += v[c];
    }
  }
}

MNEMO_INLINE float dot(const float* a, const float* b, int dim) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int c = 0; c < dim; c++) s += a[c] * b[c];
  return s;
}

// g = Σ_{t in [s, e)} w[p_t] · gOut[bag(p_t)]   // [dv]
MNEMO_INLINE void row_grad(const uint64_t* keys, int64_t s, int64_t e, const float* w,
                           const float* g_out, int bag_size, int dim, float* g) {
  for (int c = 0; c < dim; c++) g[c] = 0.0f;
  for (int64_t t = s; t < e; t++) {
    const uint32_t p = static_cast<uint32_t>(keys[t]);
    const float wt = w[p];
    const float* go = g_out + static_cast<int64_t>(p / bag_size) * dim;
#pragma omp simd
    for (int c = 0; c < dim; c++) g[c] += wt * go[c];
  }
}

struct BackwardArgs {
  void* values;
  int dtype, dim, bag_size;
  const float* w;
  const float* g_out;
  float* gw;
  const OptimizerParams* opt;
  OptimizerState state;
  const uint64_t* keys;      // (row << 32 | position), sorted
  const int64_t* run_start;  // [touched + 1]
  float global_scale;
};

MNEMO_SIMD_CLONES
void backward_rows(const BackwardArgs& a, int64_t u0, int64_t u1, float* vbuf, float* g) {
  const int dim = a.dim;
  const int64_t row_bytes = static_cast<int64_t>(dim) * elem_bytes(a.dtype);
  char* base = static_cast<char*>(a.values);
  const OptimizerParams* o = a.opt;
  for (int64_t u = u0; u < u1; u++) {
    if (u + kPrefetchRowsBwd < u1) {
      const int64_t rn = static_cast<int64_t>(a.keys[a.run_start[u + kPrefetchRowsBwd]] >> 32);
      prefetch_row_w(base + rn * row_bytes, row_bytes);
      if (o && a.state.moments) {
        const int64_t mf = o->row_wise ? dim : 2 * dim;  // floats of state per row
        prefetch_row_w(a.state.moments + rn * mf, 4 * mf);
      }
      if (o && a.state.moments16) prefetch_row_w(a.state.moments16 + rn * dim, 2 * static_cast<int64_t>(dim));
      if (o && a.state.accum) prefetch_row_w(a.state.accum + rn * dim, 4 * static_cast<int64_t>(dim));
    }
    const int64_t s = a.run_start[u], e = a.run_start[u + 1];
    const int64_t r = static_cast<int64_t>(a.keys[s] >> 32);
    const float* v = load_row(a.values, a.dtype, dim, r, vbuf);
    if (!o) {  // gw only
      for (int64_t t = s; t < e; t++) {
        const uint32_t p = static_cast<uint32_t>(a.keys[t]);
        a.gw[p] = dot(a.g_out + static_cast<int64_t>(p / a.bag_size) * dim, v, dim);
      }
      continue;
    }
    // one read of each gOut row: gw[p] = <gOut[bag], V[r]> and g += w[p] · gOut[bag]
    for (int c = 0; c < dim; c++) g[c] = 0.0f;
    for (int64_t t = s; t < e; t++) {
      const uint32_t p = static_cast<uint32_t>(a.keys[t]);
      const float* go = a.g_out + static_cast<int64_t>(p / a.bag_size) * dim;
      const float wt = a.w[p];
      float d = 0.0f;
#pragma omp simd reduction(+ : d)
      for (int c = 0; c < dim; c++) {
        d += go[c] * v[c];
        g[c] += wt * go[c];
      }
      if (a.gw) a.gw[p] = d;
    }
    float scale = a.global_scale;
    if (o->clip == kClipRow) {
      double sq = 0.0;
      for (int c = 0; c < dim; c++) sq += static_cast<double>(g[c]) * g[c];
      const double norm = std::sqrt(sq);
      if (norm > o->max_norm) scale = static_cast<float>(o->max_norm / norm);
    }
    const float decay = 1.0f - o->lr * o->weight_decay;
    // fp32 tables are updated in place; 16-bit rows go through vbuf and are rounded once
    float* vr = a.dtype == kF32 ? static_cast<float*>(a.values) + r * dim : vbuf;
    if (o->kind == kSgd) {
      sgd_row(vr, g, dim, o->lr, scale, decay);
    } else if (o->kind == kAdagrad) {
      adagrad_row(vr, a.state.accum + r * dim, g, dim, o->lr, scale, decay, o->eps);
    } else if (!o->row_wise) {
      const int32_t t = ++a.state.steps[r];
      float* m = a.state.moments + r * 2 * dim;
      adam_row(vr, m, m + dim, g, dim, t, *o, scale, decay);
    } else {
      const int32_t t = ++a.state.steps[r];
      if (o->moment_bf16) {
        adam_rowwise_row(vr, a.state.moments16 + r * dim, a.state.row_v + r, g, dim, t, *o, scale, decay);
      } else {
        adam_rowwise_row(vr, a.state.moments + r * dim, a.state.row_v + r, g, dim, t, *o, scale, decay);
      }
    }
    if (a.dtype != kF32) store_row(a.values, a.dtype, dim, r, vr);
  }
}

// Stable LSD radix sort of (row << 32 | position) keys by row, 11 bits per pass.
void sort_by_row(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp, int row_bits) {
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  std::vector<int64_t> count(kBuckets);
  tmp.resize(keys.size());
  for (int shift = 0; shift < row_bits; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    for (uint64_t k : keys) count[(k >> (32 + shift)) & (kBuckets - 1)]++;  // histogram
    int64_t sum = 0;
    for (auto& c : count) {  // exclusive prefix sum
      const int64_t n = c;
      c = sum;
      sum += n;
    }
    for (uint64_t k : keys) tmp[count[(k >> (32 + shift)) & (kBuckets - 1)]++] = k;  // scatter
    keys.swap(tmp);
  }
}

}  // namespace

void set_prefetch(int forward_rows, int backward_rows) {
  kPrefetchRows = std::max(0, forward_rows);
  kPrefetchRowsBwd = std::max(0, backward_rows);
}

void bag_forward(const void* values, int dtype, int dim, const int32_t* ids, const float* w,
                 int64_t batch, int bag_size, float* out) {
  const int threads = threads_for(batch * bag_size * dim * 4);
  parallel_for(batch, threads, [&](int, int64_t b0, int64_t b1) {
    std::vector<float> scratch(dtype == kF32 ? 0 : dim);
    forward_range(values, dtype, dim, ids, w, bag_size, out, b0, b1, scratch.data());
  });
}

void roofline_gather_sum(const float* values, int dim, const int32_t* ids, int64_t batch,
                         int bag_size, float* out, bool prefetch) {
  const int threads = threads_for(batch * bag_size * dim * 4);
  parallel_for(batch, threads, [&](int, int64_t b0, int64_t b1) {
    roofline_range(values, dim, ids, bag_size, out, b0, b1, prefetch);
  });
}

int64_t bag_backward(void* values, int dtype, int dim, const int32_t* ids, const float* w,
                     const float* g_out, int64_t batch, int bag_size, float* gw,
                     const OptimizerParams* opt, const OptimizerState& state) {
  const int64_t P = batch * bag_size;
  if (gw) std::fill(gw, gw + P, 0.0f);
  // 1. reverse table: positions sorted by row (scratch reused across calls: flat memory)
  static thread_local std::vector<uint64_t> keys, tmp;
  static thread_local std::vector<int64_t> run_start;
  keys.clear();
  int32_t max_row = 0;
  for (int64_t p = 0; p < P; p++) {
    const int32_t r = ids[p];
    if (r < 0) continue;
    keys.push_back(static_cast<uint64_t>(r) << 32 | static_cast<uint32_t>(p));
    max_row = std::max(max_row, r);
  }
  int row_bits = 0;
  while (row_bits < 31 && (int64_t{1} << row_bits) <= max_row) row_bits++;
  sort_by_row(keys, tmp, row_bits);
  const int64_t n = static_cast<int64_t>(keys.size());
  run_start.clear();
  for (int64_t t = 0; t < n; t++) {
    if (t == 0 || (keys[t] >> 32) != (keys[t - 1] >> 32)) run_start.push_back(t);
  }
  const int64_t touched = static_cast<int64_t>(run_start.size());
  run_start.push_back(n);

  BackwardArgs a{values, dtype, dim, bag_size, w, g_out, gw, opt, state, keys.data(), run_start.data(), 1.0f};
  const int threads = threads_for(n * dim * 4);
  // 2. 'global' clip: ‖g‖ over all touched rows first (reads gOut only)
  if (opt && opt->clip == kClipGlobal) {
    std::vector<double> partial(std::max(threads, 1), 0.0);
    parallel_for(touched, threads, [&](int t, int64_t u0, int64_t u1) {
      std::vector<float> g(dim);
      double sq = 0.0;
      for (int64_t u = u0; u < u1; u++) {
        row_grad(a.keys, a.run_start[u], a.run_start[u + 1], w, g_out, bag_size, dim, g.data());
        for (int c = 0; c < dim; c++) sq += static_cast<double>(g[c]) * g[c];
      }
      partial[t] = sq;
    });
    double sq = 0.0;
    for (double x : partial) sq += x;
    const double norm = std::sqrt(sq);
    if (norm > opt->max_norm) a.global_scale = static_cast<float>(opt->max_norm / norm);
  }
  // 3. rows split across threads with equal numbers of positions (balanced for hot rows)
  std::vector<int64_t> bounds(threads + 1, touched);
  bounds[0] = 0;
  for (int t = 1; t < threads; t++) {
    const int64_t target = n * t / threads;  // first run starting at or after this position
    bounds[t] = std::lower_bound(run_start.begin(), run_start.begin() + touched, target) - run_start.begin();
  }
  parallel_for(threads, threads, [&](int, int64_t t0, int64_t t1) {
    std::vector<float> vbuf(dim), g(dim);
    for (int64_t t = t0; t < t1; t++) backward_rows(a, bounds[t], bounds[t + 1], vbuf.data(), g.data());
  });
  return touched;
}

MNEMO_SIMD_CLONES
int64_t first_bad_id(const int32_t* ids, int64_t n, int64_t rows) {
  constexpr int64_t kChunk = 4096;  // branch-free scan per chunk, then locate
  for (int64_t s = 0; s < n; s += kChunk) {
    const int64_t e = std::min(n, s + kChunk);
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = s; i < e; i++) bad |= (ids[i] < -1) | (static_cast<int64_t>(ids[i]) >= rows);
    if (bad) {
      for (int64_t i = s; i < e; i++) {
        if (ids[i] < -1 || ids[i] >= rows) return i;
      }
    }
  }
  return -1;
}

MNEMO_SIMD_CLONES
int64_t first_non_finite(const float* x, int64_t n) {
  constexpr int64_t kChunk = 4096;
  for (int64_t s = 0; s < n; s += kChunk) {
    const int64_t e = std::min(n, s + kChunk);
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = s; i < e; i++) {
      uint32_t u;
      std::memcpy(&u, x + i, 4);
      bad |= (u & 0x7f800000u) == 0x7f800000u;  // exponent all ones: Inf or NaN
    }
    if (bad) {
      for (int64_t i = s; i < e; i++) {
        if (!std::isfinite(x[i])) return i;
      }
    }
  }
  return -1;
}

uint32_t checksum_words(const uint8_t* bytes, int64_t n, uint32_t seed) {
  uint32_t h = seed;
  const int64_t words = n / 4;
  for (int64_t i = 0; i < words; i++) {
    uint32_t x;
    std::memcpy(&x, bytes + 4 * i, 4);
    h = (h ^ x) * 0x01000193u;
  }
  const int tail = static_cast<int>(n & 3);
  if (tail) {
    uint32_t x = 0;
    for (int i = 0; i < tail; i++) x |= static_cast<uint32_t>(bytes[4 * words + i]) << (8 * i);
    h = (h ^ x) * 0x01000193u;
  }
  return h;
}

}  // namespace mnemo
