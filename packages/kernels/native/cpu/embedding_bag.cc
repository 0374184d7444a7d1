// Embedding bag on the CPU: forward, fused backward + optimizer, and the roofline loop.
// docs/design.md §2.4; the TypeScript twin is src/ts/embedding-bag.ts.
//
// Forward: bags are split across threads; each thread walks its positions in order and
// prefetches the row PF positions ahead, so ~PF random rows are in flight per core.
// Backward without float atomics: positions are radix-sorted by row (histogram → prefix sum →
// scatter, per 11-bit digit, all threads), which yields the reverse table "which (b, j) read
// row r" as runs; each run (= one touched row) is then owned by one thread, which reads V[r]
// once, writes gw for every position in the run, sums gV[r] in a [dv] register of scratch, and
// applies the optimizer to V[r] and its state — no N-sized gradient, no atomics.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "kernels.h"

namespace mnemo {

namespace {

int kPrefetchRows = 8;      // rows ahead (forward and roofline)
int kPrefetchRowsBwd = 12;  // touched rows ahead (backward: V and optimizer state)
constexpr int kPrefetchKeysBwd = 16;  // keys ahead (backward: w and the gOut row; ~8% off SGD's)

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

// Prefetch a row for reading into L2 (T1 hint), leaving L1 to the rows in use.
MNEMO_INLINE void prefetch_row_l2(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
}

// State-traffic roofline: rows[u0, u1) of every array are read and written back (XOR mask).
MNEMO_SIMD_CLONES
void row_rmw_range(uint8_t* const* arrays, const int64_t* row_bytes, int n_arrays, const int32_t* rows,
                   int64_t u0, int64_t u1, uint32_t mask) {
  for (int64_t u = u0; u < u1; u++) {
    if (u + kPrefetchRowsBwd < u1) {
      for (int i = 0; i < n_arrays; i++) prefetch_row_w(arrays[i] + rows[u + kPrefetchRowsBwd] * row_bytes[i], row_bytes[i]);
    }
    for (int i = 0; i < n_arrays; i++) {
      uint32_t* x = reinterpret_cast<uint32_t*>(arrays[i] + rows[u] * row_bytes[i]);
      const int64_t words = row_bytes[i] / 4;
#pragma omp simd
      for (int64_t c = 0; c < words; c++) x[c] ^= mask;
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

// End of the run of keys with the row of keys[s] (keys sorted by row).
MNEMO_INLINE int64_t run_end(const uint64_t* keys, int64_t s, int64_t end) {
  const uint64_t row = keys[s] >> 32;
  int64_t e = s + 1;
  while (e < end && (keys[e] >> 32) == row) e++;
  return e;
}

// One key of a row's gradient: returns <go, v> and sets (kFirst) or adds wt·go into g; kSum also
// returns Σ g² of the result in *sq (the row's last key). One pass over go.
template <bool kFirst, bool kSum>
MNEMO_INLINE float grad_step(const float* go, const float* v, float wt, float* g, int dim, float* sq) {
  float d = 0.0f, q = 0.0f;
#pragma omp simd reduction(+ : d, q)
  for (int c = 0; c < dim; c++) {
    d += go[c] * v[c];
    const float gc = kFirst ? wt * go[c] : g[c] + wt * go[c];
    g[c] = gc;
    if (kSum) q += gc * gc;
  }
  if (kSum) *sq = q;
  return d;
}

struct BackwardArgs {
  void* values;
  int dtype, dim, bag_size;
  const float* w;
  const float* g_out;
  float* gw;
  const OptimizerParams* opt;
  OptimizerState state;
  const AdamSteps* adam;  // Adam's bias-correction table (null for other optimizers)
  const uint64_t* keys;   // (row << 32 | position), sorted
  float global_scale;
};

// Updates the rows whose keys are keys[k0, k1) (k0, k1 on row boundaries); returns rows touched.
MNEMO_SIMD_CLONES
int64_t backward_rows(const BackwardArgs& a, int64_t k0, int64_t k1, float* vbuf, float* g) {
  const int dim = a.dim;
  const int64_t row_bytes = static_cast<int64_t>(dim) * elem_bytes(a.dtype);
  char* base = static_cast<char*>(a.values);
  const OptimizerParams* o = a.opt;
  const int64_t mf = o && o->kind == kAdam && !o->row_wise ? 2 * dim : dim;  // floats of moments per row
  int64_t touched = 0;
  for (int64_t s = k0; s < k1;) {
    // V and state of the row kPrefetchRowsBwd keys ahead (≈ rows ahead: most rows have one key)
    if (s + kPrefetchRowsBwd < k1) {
      const int64_t rn = static_cast<int64_t>(a.keys[s + kPrefetchRowsBwd] >> 32);
      prefetch_row_w(base + rn * row_bytes, row_bytes);
      if (o && a.state.moments) prefetch_row_w(a.state.moments + rn * mf, 4 * mf);
      if (o && a.state.moments16) prefetch_row_w(a.state.moments16 + rn * dim, 2 * static_cast<int64_t>(dim));
      if (o && a.state.accum) prefetch_row_w(a.state.accum + rn * dim, 4 * static_cast<int64_t>(dim));
    }
    const int64_t e = run_end(a.keys, s, k1);
    const int64_t r = static_cast<int64_t>(a.keys[s] >> 32);
    touched++;
    const float* v = load_row(a.values, a.dtype, dim, r, vbuf);
    if (!o) {  // gw only
      for (int64_t t = s; t < e; t++) {
        const uint32_t p = static_cast<uint32_t>(a.keys[t]);
        a.gw[p] = dot(a.g_out + static_cast<int64_t>(p / a.bag_size) * dim, v, dim);
      }
      s = e;
      continue;
    }
    // one read of each gOut row: gw[p] = <gOut[bag], V[r]> and g += w[p] · gOut[bag]; the first
    // key writes g (no zeroing pass), the last one also sums Σ g² when the update needs it
    const bool want_sq = o->kind == kAdam && o->row_wise;
    float sq = 0.0f;
    for (int64_t t = s; t < e; t++) {
      if (t + kPrefetchKeysBwd < k1) {  // w and the gOut row of a key ahead (gOut lives in L3)
        const uint32_t pn = static_cast<uint32_t>(a.keys[t + kPrefetchKeysBwd]);
        __builtin_prefetch(a.w + pn, 0, 3);
        prefetch_row_l2(a.g_out + static_cast<int64_t>(pn / a.bag_size) * dim, 4 * static_cast<int64_t>(dim));
      }
      const uint32_t p = static_cast<uint32_t>(a.keys[t]);
      const float* go = a.g_out + static_cast<int64_t>(p / a.bag_size) * dim;
      const float wt = a.w[p];
      const bool first = t == s, sum = want_sq && t == e - 1;
      float d;
      if (first && sum) d = grad_step<true, true>(go, v, wt, g, dim, &sq);
      else if (first) d = grad_step<true, false>(go, v, wt, g, dim, &sq);
      else if (sum) d = grad_step<false, true>(go, v, wt, g, dim, &sq);
      else d = grad_step<false, false>(go, v, wt, g, dim, &sq);
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
      adam_row(vr, m, m + dim, g, dim, t, *o, *a.adam, scale, decay);
    } else {
      const int32_t t = ++a.state.steps[r];
      if (o->moment_bf16) {
        adam_rowwise_row(vr, a.state.moments16 + r * dim, a.state.row_v + r, g, sq, dim, t, *o, *a.adam, scale, decay);
      } else {
        adam_rowwise_row(vr, a.state.moments + r * dim, a.state.row_v + r, g, sq, dim, t, *o, *a.adam, scale, decay);
      }
    }
    if (a.dtype != kF32) store_row(a.values, a.dtype, dim, r, vr);
    s = e;
  }
  return touched;
}

// Σ over the rows of keys[k0, k1) of ‖gV[r]‖² (the 'global' clip norm; reads gOut only).
double grad_sq_sum(const BackwardArgs& a, int64_t k0, int64_t k1, float* g) {
  double sq = 0.0;
  for (int64_t s = k0; s < k1;) {
    const int64_t e = run_end(a.keys, s, k1);
    row_grad(a.keys, s, e, a.w, a.g_out, a.bag_size, a.dim, g);
    for (int c = 0; c < a.dim; c++) sq += static_cast<double>(g[c]) * g[c];
    s = e;
  }
  return sq;
}

// Barrier of the `n` threads of one parallel_for: spins briefly, then yields (the waits are short:
// the threads do equal shares of the same passes).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    if (n_ <= 1) return;
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int i = 0; gen_.load(std::memory_order_acquire) == gen; i++) {
      if (i > 256) std::this_thread::yield();
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0}, gen_{0};
};

constexpr int kDigitBits = 11, kBuckets = 1 << kDigitBits;

// Thread t's share of a stable LSD radix pass over src[c0, c1) (the keys' row digit at `shift`):
// its keys go to dst after those of every smaller digit, and after those of threads < t with the
// same digit (hist: [threads, kBuckets] counts of each thread's share).
void radix_scatter(const uint64_t* src, uint64_t* dst, int64_t c0, int64_t c1, int shift,
                   const int64_t* hist, int threads, int t) {
  int64_t offset[kBuckets];
  int64_t sum = 0;
  for (int b = 0; b < kBuckets; b++) {
    for (int u = 0; u < threads; u++) {
      if (u == t) offset[b] = sum;
      sum += hist[u * kBuckets + b];
    }
  }
  for (int64_t i = c0; i < c1; i++) {
    const uint64_t k = src[i];
    dst[offset[(k >> (32 + shift)) & (kBuckets - 1)]++] = k;
  }
}

void radix_histogram(const uint64_t* keys, int64_t c0, int64_t c1, int shift, int64_t* hist) {
  std::fill(hist, hist + kBuckets, 0);
  for (int64_t i = c0; i < c1; i++) hist[(keys[i] >> (32 + shift)) & (kBuckets - 1)]++;
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

void roofline_row_rmw(uint8_t* const* arrays, const int64_t* row_bytes, int n_arrays, const int32_t* rows,
                      int64_t n_rows, uint32_t mask) {
  int64_t bytes = 0;
  for (int i = 0; i < n_arrays; i++) bytes += row_bytes[i];
  const int threads = threads_for(n_rows * bytes);
  parallel_for(n_rows, threads, [&](int, int64_t u0, int64_t u1) {
    row_rmw_range(arrays, row_bytes, n_arrays, rows, u0, u1, mask);
  });
}

// All phases run in one parallel region, one barrier between them, each thread on its share:
//   1. zero its part of gw; count its positions with an id, and their largest row
//   2. write their (row << 32 | position) keys, compacted, and the histogram of the low digit
//   3. stable LSD radix sort by row, 11 bits per pass (histogram → prefix sum → scatter), each
//      thread scattering its own contiguous share: the reverse table "which (b, j) read row r"
//   4. split the sorted keys into equal shares moved to row boundaries, so each touched row is
//      owned by one thread (no atomics); 'global' clip: ‖g‖ over all rows first
//   5. each thread reads V[r] once per row, writes gw for every position in the run, sums gV[r]
//      in a [dv] register of scratch and applies the optimizer to V[r] and its state.
int64_t bag_backward(void* values, int dtype, int dim, const int32_t* ids, const float* w,
                     const float* g_out, int64_t batch, int bag_size, float* gw,
                     const OptimizerParams* opt, const OptimizerState& state) {
  const int64_t P = batch * bag_size;
  // sort scratch of the calling thread, reused across calls (flat memory)
  static thread_local std::vector<uint64_t> keys_a, keys_b;
  static thread_local AdamSteps adam_steps;
  if (static_cast<int64_t>(keys_a.size()) < P) {
    keys_a.resize(P);
    keys_b.resize(P);
  }
  uint64_t* const scratch_a = keys_a.data();  // (thread_local: name them outside the workers)
  uint64_t* const scratch_b = keys_b.data();
  const AdamSteps* adam = nullptr;
  if (opt && opt->kind == kAdam) {
    adam_steps.init(*opt);
    adam = &adam_steps;
  }
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(P * dim * 4), std::max<int64_t>(P, 1)));
  std::vector<int64_t> count(threads), hist(static_cast<size_t>(threads) * kBuckets), touched(threads);
  std::vector<int32_t> max_row(threads);
  std::vector<double> partial(threads);
  Barrier barrier(threads);

  parallel_for(threads, threads, [&](int t, int64_t, int64_t) {
    // 1.
    const int64_t p0 = P * t / threads, p1 = P * (t + 1) / threads;
    if (gw) std::fill(gw + p0, gw + p1, 0.0f);
    int64_t c = 0;
    int32_t mx = 0;
    for (int64_t p = p0; p < p1; p++) {
      const int32_t r = ids[p];
      c += r >= 0;
      mx = std::max(mx, r);
    }
    count[t] = c;
    max_row[t] = mx;
    barrier.wait();
    // 2.
    int64_t c0 = 0;  // this thread's share of the key arrays: [c0, c1)
    for (int u = 0; u < t; u++) c0 += count[u];
    const int64_t c1 = c0 + count[t];
    int64_t total = c1;
    for (int u = t + 1; u < threads; u++) total += count[u];
    const int32_t top = *std::max_element(max_row.begin(), max_row.end());
    int row_bits = 0;
    while (row_bits < 31 && (int64_t{1} << row_bits) <= top) row_bits++;
    uint64_t* src = scratch_a;
    uint64_t* dst = scratch_b;
    int64_t* h = hist.data() + static_cast<size_t>(t) * kBuckets;
    std::fill(h, h + kBuckets, 0);
    for (int64_t p = p0, i = c0; p < p1; p++) {
      const int32_t r = ids[p];
      if (r < 0) continue;
      const uint64_t k = static_cast<uint64_t>(r) << 32 | static_cast<uint32_t>(p);
      src[i++] = k;
      h[(k >> 32) & (kBuckets - 1)]++;
    }
    barrier.wait();
    // 3.
    for (int shift = 0; shift < row_bits; shift += kDigitBits) {
      if (shift > 0) {
        radix_histogram(src, c0, c1, shift, h);
        barrier.wait();
      }
      radix_scatter(src, dst, c0, c1, shift, hist.data(), threads, t);
      std::swap(src, dst);
      barrier.wait();  // the pass is complete; histograms may be overwritten
    }
    // 4.
    auto boundary = [&](int u) {  // first key of thread u's rows
      if (u == 0) return int64_t{0};
      if (u == threads) return total;
      int64_t k = total * u / threads;
      while (k > 0 && k < total && (src[k] >> 32) == (src[k - 1] >> 32)) k++;
      return k;
    };
    const int64_t k0 = boundary(t), k1 = boundary(t + 1);
    BackwardArgs a{values, dtype, dim, bag_size, w, g_out, gw, opt, state, adam, src, 1.0f};
    std::vector<float> vbuf(dim), g(dim);
    if (opt && opt->clip == kClipGlobal) {
      partial[t] = grad_sq_sum(a, k0, k1, g.data());
      barrier.wait();
      double sq = 0.0;
      for (double x : partial) sq += x;
      const double norm = std::sqrt(sq);
      if (norm > opt->max_norm) a.global_scale = static_cast<float>(opt->max_norm / norm);
    }
    // 5.
    touched[t] = backward_rows(a, k0, k1, vbuf.data(), g.data());
  });
  int64_t sum = 0;
  for (int64_t x : touched) sum += x;
  return sum;
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
