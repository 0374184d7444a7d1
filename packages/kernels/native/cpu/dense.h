// Dense math for the tfjs wasm backend (dense.cc): SGEMM through a runtime-loaded CBLAS
// (OpenBLAS), and a peak-FLOP/s probe.
#pragma once

#include <cstdint>
#include <string>

namespace mnemo {

bool blas_available();
std::string blas_name();
std::string blas_reason();
int blas_threads();
// OpenBLAS threads for large products (small ones run on one; no-op for other libraries)
void set_dense_threads(int n);

// (no-op without a BLAS) c[i] = op(a[i]) · op(b[i]) for i < batch, row-major; a[i] = a + i·a_stride (0 broadcasts),
// op(a) [m, k] (stored [k, m] when trans_a), op(b) [k, n] (stored [n, k] when trans_b), c [m, n].
void sgemm_batched(const float* a, const float* b, float* c, int64_t batch, int64_t a_stride,
                   int64_t b_stride, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b);

// AdamW of one dense parameter (dense_adamw.cc): reads x, m, v, g [n], writes xo, mo, vo [n].
struct DenseAdamParams {
  float scale, beta1, beta2, eps, step, inv_bc2, decay;
};
void dense_adamw(const float* x, const float* m, const float* v, const float* g, float* xo, float* mo, float* vo,
                 int64_t n, const DenseAdamParams& p);

// Σ a[i]² (in double across blocks and threads).
double sum_squares(const float* a, int64_t n);

// out[i] = a[i mod pa] op b[i mod pb] for i < n (elementwise.cc); pa, pb ∈ {n, p, 1}, p divides n.
enum BinaryOp : int { kBinaryAdd = 0, kBinarySub = 1, kBinaryMul = 2 };
void binary_f32(int op, const float* a, const float* b, float* out, int64_t n, int64_t pa, int64_t pb);

// GFLOP/s of a tight FMA loop on `threads` threads for `seconds` each (0 without FMA).
double fma_peak_gflops(int threads, double seconds);
// Whether fma_peak_gflops runs its AVX-512 loop (zmm) rather than the AVX2 one (ymm).
bool fma_peak_avx512();

}  // namespace mnemo
