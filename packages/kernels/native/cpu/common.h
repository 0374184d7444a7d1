// Shared helpers of the Mnemo CPU kernels: threads, 16-bit float conversions, prefetch, and the
// SIMD dispatch attribute. Plain C++17, no dependencies.
#pragma once

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

// Hot loops are compiled twice (AVX2+FMA and baseline x86-64) and picked at load time by the
// CPU's features (GCC function multiversioning), so one binary runs on any x86-64. The clone is
// named by feature level (x86-64-v3 = AVX2, FMA, BMI2...), not by model: an "arch=haswell" clone
// is chosen with __builtin_cpu_is, so AMD CPUs with AVX2 would run the baseline SSE2 clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && __GNUC__ >= 12
#define MNEMO_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define MNEMO_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MNEMO_SIMD_CLONES
#endif

#define MNEMO_INLINE inline __attribute__((always_inline))

namespace mnemo {

enum Dtype : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

// Number of worker threads the kernels use (set by the addon; default: cores, at most 8).
int num_threads();
void set_num_threads(int n);

// Run fn(t, begin, end) on `threads` contiguous slices of [0, n) (slice t on thread t).
template <class F>
void parallel_for(int64_t n, int threads, F fn) {
  if (threads <= 1 || n <= 1) {
    fn(0, int64_t{0}, n);
    return;
  }
  if (threads > n) threads = static_cast<int>(n);
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; t++) {
    pool.emplace_back([=] { fn(t, n * t / threads, n * (t + 1) / threads); });
  }
  fn(0, int64_t{0}, n / threads);
  for (auto& th : pool) th.join();
}

// Threads worth using for `work` bytes touched: small calls stay on the calling thread.
inline int threads_for(int64_t work) {
  return work < (int64_t{1} << 18) ? 1 : num_threads();
}

MNEMO_INLINE float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

MNEMO_INLINE uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Prefetch a row of `bytes` into cache, one request per 64-byte line.
MNEMO_INLINE void prefetch_row(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

// Prefetch for writing into L2 (several rows ahead would not fit L1).
MNEMO_INLINE void prefetch_row_w(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1, 2);
}

// Load row r of a table of any storage dtype as float32 into dst (no copy for f32: returns V).
MNEMO_INLINE const float* load_row(const void* values, int dtype, int dim, int64_t r, float* dst) {
  if (dtype == kF32) return static_cast<const float*>(values) + r * dim;
  const uint16_t* s = static_cast<const uint16_t*>(values) + r * dim;
  if (dtype == kBF16) {
    for (int c = 0; c < dim; c++) dst[c] = bf16_to_f32(s[c]);
  } else {
    for (int c = 0; c < dim; c++) dst[c] = f16_to_f32(s[c]);
  }
  return dst;
}

MNEMO_INLINE void store_row(void* values, int dtype, int dim, int64_t r, const float* src) {
  if (dtype == kF32) {
    float* d = static_cast<float*>(values) + r * dim;
    if (d != src) std::memcpy(d, src, sizeof(float) * dim);
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(values) + r * dim;
  if (dtype == kBF16) {
    for (int c = 0; c < dim; c++) d[c] = f32_to_bf16(src[c]);
  } else {
    for (int c = 0; c < dim; c++) d[c] = f32_to_f16(src[c]);
  }
}

MNEMO_INLINE int elem_bytes(int dtype) { return dtype == kF32 ? 4 : 2; }

}  // namespace mnemo
