// Embedding-bag forward (docs/design.md §2.4):
//   out[b, :] = Σ_j w[b, j] · V[idx[b, j], :]        V [N, dv], idx/w [B, L], out [B, dv]
//
// One warp per (bag b, row segment). A segment is 32·VEC consecutive columns, so each lane
// owns VEC columns (VEC = 4: one float4 load per row read; VEC = 1 when dv % 4 != 0). For every
// j the warp reads one contiguous 128·VEC-byte piece of row V[idx[b, j]] — fully coalesced — and
// accumulates in fp32 registers. The (idx, w) pairs of the bag are loaded 32 at a time, one per
// lane, then broadcast with shuffles, so they cost one coalesced load per 32 reads.
// idx = -1 is padding: skipped, so a bag of all -1 (or L = 0) yields a zero row.
#include "common.cuh"
#include "kernels.h"

namespace mnemo {
namespace {

constexpr int kFwdThreads = 256;  // 8 warps per block

template <int VEC>
__global__ void __launch_bounds__(kFwdThreads)
embedding_bag_fwd_kernel(const float* __restrict__ values,  // [N, dv]
                         int dv,
                         const int32_t* __restrict__ ids,    // [B, L]
                         const float* __restrict__ weights,  // [B, L]
                         int batch, int bag_size,
                         float* __restrict__ out) {          // [B, dv]
  const int lane = threadIdx.x % kWarp;
  const int segments = segments_per_row(dv, VEC);
  const int64_t warp_id = (int64_t)blockIdx.x * (kFwdThreads / kWarp) + threadIdx.x / kWarp;
  if (warp_id >= (int64_t)batch * segments) return;  // whole warp leaves together
  const int b = (int)(warp_id / segments);
  const int seg = (int)(warp_id % segments);
  const int col = seg * kWarp * VEC + lane * VEC;  // first of this lane's VEC columns
  const bool active = col < dv;                    // dv % VEC == 0, so col < dv ⇒ all VEC fit

  float acc[VEC];
#pragma unroll
  for (int c = 0; c < VEC; c++) acc[c] = 0.f;

  const int32_t* bag_ids = ids + (int64_t)b * bag_size;  // [L]
  const float* bag_w = weights + (int64_t)b * bag_size;  // [L]
  for (int j0 = 0; j0 < bag_size; j0 += kWarp) {
    const int jl = j0 + lane;
    const int32_t my_id = jl < bag_size ? bag_ids[jl] : -1;
    const float my_w = jl < bag_size ? bag_w[jl] : 0.f;
    const int count = min(kWarp, bag_size - j0);  // warp-uniform
#pragma unroll 4
    for (int t = 0; t < count; t++) {
      const int32_t row = __shfl_sync(kFullMask, my_id, t);
      const float w = __shfl_sync(kFullMask, my_w, t);
      if (row < 0 || !active) continue;
      row_axpy<VEC>(acc, w, values + (int64_t)row * dv + col);
    }
  }
  if (!active) return;
  float* dst = out + (int64_t)b * dv + col;
  if constexpr (VEC == 4) {
    *reinterpret_cast<float4*>(dst) = make_float4(acc[0], acc[1], acc[2], acc[3]);
  } else {
    dst[0] = acc[0];
  }
}

template <int VEC>
cudaError_t launch_fwd(const float* values, int dv, const int32_t* ids, const float* weights,
                       int batch, int bag_size, float* out, cudaStream_t stream) {
  const int64_t warps = (int64_t)batch * segments_per_row(dv, VEC);
  const int64_t blocks = (warps + kFwdThreads / kWarp - 1) / (kFwdThreads / kWarp);
  embedding_bag_fwd_kernel<VEC><<<(unsigned)blocks, kFwdThreads, 0, stream>>>(
      values, dv, ids, weights, batch, bag_size, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t embedding_bag_forward(const float* values, int dv, const int32_t* ids,
                                  const float* weights, int batch, int bag_size, float* out,
                                  cudaStream_t stream) {
  if (batch == 0 || dv == 0) return cudaSuccess;
  // cudaMalloc'd rows start 16-byte aligned when dv % 4 == 0, so float4 access is legal.
  if (dv % 4 == 0) return launch_fwd<4>(values, dv, ids, weights, batch, bag_size, out, stream);
  return launch_fwd<1>(values, dv, ids, weights, batch, bag_size, out, stream);
}

}  // namespace mnemo
