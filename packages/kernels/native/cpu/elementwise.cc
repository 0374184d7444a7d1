// Binary elementwise float32 ops (Add, Sub, Multiply) for the tfjs wasm backend, on the wasm heap
// in place, on all cores (src/wasm-elementwise.ts has the contract and the shapes it takes):
//
//   out[i] = a[i mod pa] ∘ b[i mod pb]      i < n;  pa, pb ∈ {n, p, 1}, the larger one = n
//
// i.e. equal shapes, one operand broadcast along the leading dims (a row [p] against a [n/p, p]
// tensor, as RMSNorm's gain or a bias), or a scalar. tfjs-wasm runs these on one thread; in a
// training step of the wide throughput model Multiply and Add took 21% of kernel time.
#include "common.h"
#include "dense.h"

namespace mnemo {

namespace {

template <int Op>
MNEMO_INLINE float apply(float x, float y) {
  if constexpr (Op == kBinaryAdd) return x + y;
  if constexpr (Op == kBinarySub) return x - y;
  return x * y;
}

template <int Op>
MNEMO_SIMD_CLONES void run_range(const float* a, const float* b, float* out, int64_t begin, int64_t end, int64_t pa,
                                 int64_t pb) {
  if (pa == pb) {  // equal shapes (or both scalars)
#pragma omp simd
    for (int64_t i = begin; i < end; i++) out[i] = apply<Op>(a[i], b[i]);
  } else if (pb == 1) {
    const float y = b[0];
#pragma omp simd
    for (int64_t i = begin; i < end; i++) out[i] = apply<Op>(a[i], y);
  } else if (pa == 1) {
    const float x = a[0];
#pragma omp simd
    for (int64_t i = begin; i < end; i++) out[i] = apply<Op>(x, b[i]);
  } else {  // one side repeats with period p = min(pa, pb); slices are whole rows of p
    const int64_t p = pa < pb ? pa : pb;
    for (int64_t r = begin; r < end; r += p) {
      const float* ar = pa == p ? a : a + r;
      const float* br = pb == p ? b : b + r;
      float* o = out + r;
#pragma omp simd
      for (int64_t j = 0; j < p; j++) o[j] = apply<Op>(ar[j], br[j]);
    }
  }
}

}  // namespace

void binary_f32(int op, const float* a, const float* b, float* out, int64_t n, int64_t pa, int64_t pb) {
  const int64_t p = pa < pb ? pa : pb;
  const bool rows = p > 1 && pa != pb;
  // slice on whole rows when one side repeats, so each thread starts at a row boundary
  const int64_t units = rows ? n / p : n;
  const int64_t unit = rows ? p : 1;
  // src/wasm-elementwise.ts sends only tensors of >= 1M elements here, where a second thread pays
  const int threads = n >= (int64_t{1} << 20) ? num_threads() : 1;
  parallel_for(units, threads, [&](int, int64_t begin, int64_t end) {
    if (op == kBinaryAdd) run_range<kBinaryAdd>(a, b, out, begin * unit, end * unit, pa, pb);
    else if (op == kBinarySub) run_range<kBinarySub>(a, b, out, begin * unit, end * unit, pa, pb);
    else run_range<kBinaryMul>(a, b, out, begin * unit, end * unit, pa, pb);
  });
}

}  // namespace mnemo
