// Shared device helpers for the Mnemo CUDA kernels (warp reductions, float4 arithmetic,
// the (score, id) order used by every top-k). Header-only; included by the .cu files.
#pragma once

#include <cuda_runtime.h>
#include <cstdint>

namespace mnemo {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Sum of `v` over the 32 lanes of a warp; every lane gets the total.
__device__ __forceinline__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

__device__ __forceinline__ float4 f4_zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }

// acc += w · x, componentwise, fp32.
__device__ __forceinline__ void f4_axpy(float4& acc, float w, const float4& x) {
  acc.x = fmaf(w, x.x, acc.x);
  acc.y = fmaf(w, x.y, acc.y);
  acc.z = fmaf(w, x.z, acc.z);
  acc.w = fmaf(w, x.w, acc.w);
}

__device__ __forceinline__ float f4_dot(const float4& a, const float4& b) {
  return fmaf(a.x, b.x, fmaf(a.y, b.y, fmaf(a.z, b.z, a.w * b.w)));
}

// Total order of top-k results: higher score first, then lower id. `true` when (sa, ia)
// comes strictly before (sb, ib). Same rule as the TypeScript kernel (src/ts/pk-topk.ts).
__device__ __forceinline__ bool ranks_before(float sa, int ia, float sb, int ib) {
  return sa > sb || (sa == sb && ia < ib);
}

// Number of warps of `dv` columns when one warp covers `32 · vec` columns.
__host__ __device__ __forceinline__ int segments_per_row(int dv, int vec) {
  const int width = kWarp * vec;
  return (dv + width - 1) / width;
}

}  // namespace mnemo
