// Fused product-key top-k (Lample et al. 2019; docs/design.md §1). One thread block per
// (b, h) does the whole search:
//   1. q → shared memory                                          q [dk] = [q1 | q2]
//   2. half scores s1 = K1 q1, s2 = K2 q2, one warp per sub-key row: the lanes read the row
//      as contiguous 128-byte pieces (coalesced), multiply with q from shared memory and
//      reduce with shuffles.                                      s [2, n]
//      The scores stay in shared memory when 2n floats fit, else in a global scratch.
//   3. per-half top-k: k rounds of a block-wide arg-best. Round t keeps only the entries that
//      rank strictly after the winner of round t-1 in the total order (score desc, id asc),
//      so no "taken" marks are needed and ties resolve exactly as in the TS kernel.
//                                                                 (a, I1), (b, I2) [k] each
//   4. k² candidates a[u] + b[v] with id I1[u]·n + I2[v], generated on the fly. Since a and b
//      are sorted in that same order, every (u', v') with u' ≤ u, v' ≤ v ranks at or before
//      (u, v), so (u, v) can only reach the top k when (u+1)(v+1) ≤ k: the others are skipped.
//   5. final top-k over the candidates by the same rounds.        scores, ids [k]
// Accumulation is fp32 (the TS kernel uses float64); scores are returned as fp32.
#include <climits>
#include <cmath>

#include "common.cuh"
#include "kernels.h"

namespace mnemo {
namespace {

constexpr int kPkThreads = 256;
constexpr int kPkWarps = kPkThreads / kWarp;
constexpr size_t kDefaultSmem = 48 * 1024;

// Block-wide best (score desc, id asc) of each thread's (s, i). Every thread gets the winner.
// red_s/red_i: shared [kPkWarps + 1].
__device__ void block_best(float& s, int& i, float* red_s, int* red_i) {
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  for (int off = kWarp / 2; off > 0; off >>= 1) {
    const float os = __shfl_down_sync(kFullMask, s, off);
    const int oi = __shfl_down_sync(kFullMask, i, off);
    if (ranks_before(os, oi, s, i)) {
      s = os;
      i = oi;
    }
  }
  if (lane == 0) {
    red_s[warp] = s;
    red_i[warp] = i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float bs = red_s[0];
    int bi = red_i[0];
    for (int w = 1; w < kPkWarps; w++) {
      if (ranks_before(red_s[w], red_i[w], bs, bi)) {
        bs = red_s[w];
        bi = red_i[w];
      }
    }
    red_s[kPkWarps] = bs;
    red_i[kPkWarps] = bi;
  }
  __syncthreads();
  s = red_s[kPkWarps];
  i = red_i[kPkWarps];
  __syncthreads();  // red_* may be overwritten by the next call
}

// Top-k of scores[0 .. n) into out_s/out_i (sorted; ties → lower index). Block-wide.
__device__ void block_topk(const float* scores, int n, int k, float* out_s, int* out_i,
                           float* red_s, int* red_i) {
  float last_s = INFINITY;  // rank strictly after (last_s, last_i) to be eligible
  int last_i = -1;
  for (int t = 0; t < k; t++) {
    float best_s = -INFINITY;
    int best_i = INT_MAX;
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
      const float sr = scores[r];
      if (ranks_before(last_s, last_i, sr, r) && ranks_before(sr, r, best_s, best_i)) {
        best_s = sr;
        best_i = r;
      }
    }
    block_best(best_s, best_i, red_s, red_i);
    if (threadIdx.x == 0) {
      out_s[t] = best_s;
      out_i[t] = best_i;
    }
    last_s = best_s;
    last_i = best_i;
  }
}

// Dynamic shared memory: q [dk] | a [k] | b [k] | I1 [k] | I2 [k] | red_s, red_i [kPkWarps+1]
// | (scores [2n] when scores_in_shared)
size_t smem_bytes(int n, int dk, int k, bool scores_in_shared) {
  size_t floats = (size_t)dk + 4 * (size_t)k + 2 * (kPkWarps + 1);
  if (scores_in_shared) floats += 2 * (size_t)n;
  return floats * sizeof(float);
}

__global__ void __launch_bounds__(kPkThreads)
pk_topk_kernel(const float* __restrict__ queries,  // [B, H, dk]
               const float* __restrict__ subkeys,  // [H, 2, n, dk/2]
               int heads, int n, int dk, int k,
               float* __restrict__ out_scores,     // [B, H, k]
               int32_t* __restrict__ out_ids,      // [B, H, k]
               float* __restrict__ scratch,        // [B·H, 2, n] or null
               bool scores_in_shared) {
  extern __shared__ float smem[];
  const int half = dk / 2;
  const int64_t bh = blockIdx.x;  // b·H + h
  const int h = (int)(bh % heads);
  float* q = smem;                                         // [dk]
  float* a = q + dk;                                       // [k]  top-k of s1
  float* b = a + k;                                        // [k]  top-k of s2
  int* i1 = reinterpret_cast<int*>(b + k);                 // [k]
  int* i2 = i1 + k;                                        // [k]
  float* red_s = reinterpret_cast<float*>(i2 + k);         // [kPkWarps + 1]
  int* red_i = reinterpret_cast<int*>(red_s + kPkWarps + 1);  // [kPkWarps + 1]
  float* s = scores_in_shared ? reinterpret_cast<float*>(red_i + kPkWarps + 1)
                              : scratch + bh * 2 * (int64_t)n;  // [2, n]

  // 1. query
  const float* qg = queries + bh * dk;
  for (int c = threadIdx.x; c < dk; c += blockDim.x) q[c] = qg[c];
  __syncthreads();

  // 2. half scores: rows 0..n-1 → s1 (K1·q1), rows n..2n-1 → s2 (K2·q2)
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const float* kh = subkeys + (int64_t)h * 2 * n * half;  // [2, n, half]
  for (int r = warp; r < 2 * n; r += kPkWarps) {
    const float* key = kh + (int64_t)r * half;  // row r of the [2n, half] view
    const float* qhalf = q + (r < n ? 0 : half);
    float dot = 0.f;
    for (int c = lane; c < half; c += kWarp) dot = fmaf(__ldg(key + c), qhalf[c], dot);
    dot = warp_sum(dot);
    if (lane == 0) s[r] = dot;
  }
  __syncthreads();

  // 3. per-half top-k
  block_topk(s, n, k, a, i1, red_s, red_i);
  block_topk(s + n, n, k, b, i2, red_s, red_i);
  __syncthreads();  // a, b, i1, i2 were written by thread 0

  // 4 + 5. final top-k over the pruned k² candidates
  float last_s = INFINITY;
  int last_i = -1;
  const int64_t pairs = (int64_t)k * k;
  for (int t = 0; t < k; t++) {
    float best_s = -INFINITY;
    int best_i = INT_MAX;
    for (int64_t c = threadIdx.x; c < pairs; c += blockDim.x) {
      const int u = (int)(c / k);
      const int v = (int)(c % k);
      if ((int64_t)(u + 1) * (v + 1) > k) continue;  // ≥ k candidates rank before it
      const float cs = a[u] + b[v];
      const int ci = i1[u] * n + i2[v];
      if (ranks_before(last_s, last_i, cs, ci) && ranks_before(cs, ci, best_s, best_i)) {
        best_s = cs;
        best_i = ci;
      }
    }
    block_best(best_s, best_i, red_s, red_i);
    if (threadIdx.x == 0) {
      out_scores[bh * k + t] = best_s;
      out_ids[bh * k + t] = best_i;
    }
    last_s = best_s;
    last_i = best_i;
  }
}

int smem_optin_limit(int device) {
  int limit = 0;
  if (cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
      cudaSuccess) {
    cudaGetLastError();
    return (int)kDefaultSmem;
  }
  return limit;
}

bool scores_fit_shared(int n, int dk, int k, int device) {
  return smem_bytes(n, dk, k, true) <= (size_t)smem_optin_limit(device);
}

}  // namespace

size_t pk_topk_scratch_floats(int batch, int heads, int n, int dk, int k, int device) {
  if (scores_fit_shared(n, dk, k, device)) return 0;
  return (size_t)batch * heads * 2 * n;
}

cudaError_t pk_topk(const float* queries, const float* subkeys, int batch, int heads, int n,
                    int dk, int k, float* scores, int32_t* ids, float* scratch, int device,
                    cudaStream_t stream) {
  if ((int64_t)batch * heads == 0) return cudaSuccess;
  if (k < 1 || k > n || dk < 2 || dk % 2 != 0) return cudaErrorInvalidValue;
  const bool in_shared = scores_fit_shared(n, dk, k, device);
  if (!in_shared && scratch == nullptr) return cudaErrorInvalidValue;
  const size_t bytes = smem_bytes(n, dk, k, in_shared);
  if (bytes > (size_t)smem_optin_limit(device)) return cudaErrorInvalidValue;  // dk + 4k too big
  if (bytes > kDefaultSmem) {
    const cudaError_t err = cudaFuncSetAttribute(
        pk_topk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (err != cudaSuccess) return err;
  }
  const int64_t blocks = (int64_t)batch * heads;
  pk_topk_kernel<<<(unsigned)blocks, kPkThreads, bytes, stream>>>(
      queries, subkeys, heads, n, dk, k, scores, ids, in_shared ? nullptr : scratch, in_shared);
  return cudaGetLastError();
}

}  // namespace mnemo
