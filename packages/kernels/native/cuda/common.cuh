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

// acc[0..VEC) += w · src[0..VEC), fp32, read through the read-only cache; VEC = 4 is one float4
// load (src 16-byte aligned), any other VEC reads floats one by one.
template <int VEC>
__device__ __forceinline__ void row_axpy(float (&acc)[VEC], float w, const float* __restrict__ src) {
  if constexpr (VEC == 4) {
    const float4 x = __ldg(reinterpret_cast<const float4*>(src));
    acc[0] = fmaf(w, x.x, acc[0]);
    acc[1] = fmaf(w, x.y, acc[1]);
    acc[2] = fmaf(w, x.z, acc[2]);
    acc[3] = fmaf(w, x.w, acc[3]);
  } else {
#pragma unroll
    for (int c = 0; c < VEC; c++) acc[c] = fmaf(w, __ldg(src + c), acc[c]);
  }
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
