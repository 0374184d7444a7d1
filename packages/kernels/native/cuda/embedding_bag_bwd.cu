// Embedding-bag backward with the optimizer step fused in (docs/design.md §2, "without float
// atomics"). With P = B·L positions p = b·L + j:
//   gw[b, j] = <gOut[b, :], V[idx[b, j], :]>                      (V before the step)
//   gV[r]    = Σ_{p : idx[p] = r} w[p] · gOut[p / L, :]            (only touched rows r)
//   V[r]     ← step(V[r], gV[r])  (SGD | Adagrad | lazy Adam with per-row step count)
//
// Pipeline (all on `stream`):
//   1. gw_kernel            one warp per position: float4 dot product, warp reduction.
//   2. reverse index        a CSR "which positions read row r":
//      a. keys[p] = idx[p] (padding → N, sorts last), vals[p] = p
//      b. stable counting sort by key (CUB radix sort: per digit a histogram of keys, an
//         exclusive prefix sum of the histogram, a scatter into the reverse table). Being
//         stable, each row's readers stay in ascending p, so every row sums in a fixed order:
//         results are bitwise reproducible run to run, unlike an atomic fill.
//      c. head flags + exclusive scan: row_start[u] (CSR offsets) and row_id[u] for the U
//         distinct touched rows, U read back to size the last launch.
//   3. (Adam) steps[r] += 1 for each touched row, before the update reads it.
//   4. row_step_kernel      one warp per (touched row, 32·VEC-column segment): sums
//      w · gOut[b] over the row's readers in fp32 registers (coalesced gOut reads), then
//      applies the optimizer to that segment of V[r] and its state, writing each element once.
// No float atomics anywhere; the only atomics are inside CUB's integer histograms. The sort
// and scans cost O(P), independent of N, so a 64M-row table costs the same as a 64K-row one.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "common.cuh"
#include "kernels.h"

namespace mnemo {
namespace {

constexpr int kThreads = 256;  // 8 warps per block
constexpr int kWarpsPerBlock = kThreads / kWarp;

unsigned blocks_for_warps(int64_t warps) {
  return (unsigned)((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

// 1. gw[p] = <gOut[p / L], V[idx[p]]>; one warp per position p. [P]
template <int VEC>
__global__ void __launch_bounds__(kThreads)
gw_kernel(const float* __restrict__ values,    // [N, dv]
          int dv,
          const int32_t* __restrict__ ids,     // [P]
          const float* __restrict__ grad_out,  // [B, dv]
          int positions, int bag_size,
          float* __restrict__ grad_weights) {  // [P]
  const int lane = threadIdx.x % kWarp;
  const int64_t p = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (p >= positions) return;
  const int32_t row = ids[p];
  if (row < 0) {
    if (lane == 0) grad_weights[p] = 0.f;
    return;
  }
  const float* v = values + (int64_t)row * dv;                 // [dv]
  const float* g = grad_out + (int64_t)(p / bag_size) * dv;    // [dv]
  float dot = 0.f;
  for (int col = lane * VEC; col < dv; col += kWarp * VEC) {
    if constexpr (VEC == 4) {
      dot += f4_dot(__ldg(reinterpret_cast<const float4*>(v + col)),
                    __ldg(reinterpret_cast<const float4*>(g + col)));
    } else {
      dot = fmaf(__ldg(v + col), __ldg(g + col), dot);
    }
  }
  dot = warp_sum(dot);
  if (lane == 0) grad_weights[p] = dot;
}

// 2a. keys[p] = idx[p] (padding -1 → N), vals[p] = p.  [P]
__global__ void make_keys_kernel(const int32_t* __restrict__ ids, int positions, int32_t pad_key,
                                 int32_t* __restrict__ keys, int32_t* __restrict__ vals) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= positions) return;
  const int32_t row = ids[p];
  keys[p] = row < 0 ? pad_key : row;
  vals[p] = p;
}

// 2c. head[i] = 1 where sorted position i starts the run of a real row (key < N).  [P]
__global__ void head_flags_kernel(const int32_t* __restrict__ sorted_keys, int positions,
                                  int32_t pad_key, int32_t* __restrict__ head) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= positions) return;
  const int32_t key = sorted_keys[i];
  head[i] = (key != pad_key && (i == 0 || sorted_keys[i - 1] != key)) ? 1 : 0;
}

// 2c. From the exclusive scan of the head flags: row_start[u], row_id[u] for u < U, and
// row_start[U] = number of non-padding positions, num_rows[0] = U.
__global__ void csr_rows_kernel(const int32_t* __restrict__ sorted_keys,
                                const int32_t* __restrict__ head,
                                const int32_t* __restrict__ head_scan, int positions,
                                int32_t pad_key, int32_t* __restrict__ row_start,
                                int32_t* __restrict__ row_id, int32_t* __restrict__ num_rows) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= positions) return;
  const int32_t key = sorted_keys[i];
  if (key == pad_key) return;
  if (head[i]) {
    row_start[head_scan[i]] = i;
    row_id[head_scan[i]] = key;
  }
  const bool last_real = i == positions - 1 || sorted_keys[i + 1] == pad_key;
  if (last_real) {
    const int32_t rows_touched = head_scan[i] + head[i];
    row_start[rows_touched] = i + 1;
    num_rows[0] = rows_touched;
  }
}

// 3. Adam: one more step for every touched row.  [U]
__global__ void bump_steps_kernel(const int32_t* __restrict__ row_id, int rows_touched,
                                  int32_t* __restrict__ steps) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u < rows_touched) steps[row_id[u]] += 1;  // row ids are distinct: no race
}

// gV[r, col .. col+VEC) = Σ w·gOut over the row's readers [begin, end): the warp reads 32
// readers at a time and broadcasts each (position, weight) with a shuffle; every lane owns VEC
// columns (row_axpy: float4 loads when VEC = 4).
template <int VEC>
__device__ __forceinline__ void row_grad_segment(const float* __restrict__ weights,
                                                 const float* __restrict__ grad_out, int dv,
                                                 int bag_size, const int32_t* __restrict__ readers,
                                                 int begin, int end, int col, bool active,
                                                 int lane, float (&grad)[VEC]) {
#pragma unroll
  for (int c = 0; c < VEC; c++) grad[c] = 0.f;
  for (int i0 = begin; i0 < end; i0 += kWarp) {
    const int il = i0 + lane;
    const int32_t my_p = il < end ? readers[il] : 0;
    const float my_w = il < end ? weights[my_p] : 0.f;
    const int count = min(kWarp, end - i0);  // warp-uniform
#pragma unroll 4
    for (int t = 0; t < count; t++) {
      const int32_t p = __shfl_sync(kFullMask, my_p, t);
      const float w = __shfl_sync(kFullMask, my_w, t);
      if (!active) continue;
      row_axpy<VEC>(grad, w, grad_out + (int64_t)(p / bag_size) * dv + col);
    }
  }
}

// 4. Per touched row u and column segment: gV = Σ w·gOut over the row's readers, then the
// optimizer step on V[r, segment]. One warp per (u, segment).
template <int VEC, int KIND>
__global__ void __launch_bounds__(kThreads)
row_step_kernel(float* __restrict__ values,            // [N, dv]
                int dv,
                const float* __restrict__ weights,     // [P]
                const float* __restrict__ grad_out,    // [B, dv]
                int bag_size,
                const int32_t* __restrict__ readers,   // [P] reverse table: positions by row
                const int32_t* __restrict__ row_start, // [U + 1] CSR offsets into readers
                const int32_t* __restrict__ row_id,    // [U]
                int rows_touched,                      // U
                OptimizerConfig opt, OptimizerState state) {
  const int lane = threadIdx.x % kWarp;
  const int segments = segments_per_row(dv, VEC);
  const int64_t warp_id = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (warp_id >= (int64_t)rows_touched * segments) return;  // whole warp leaves together
  const int u = (int)(warp_id / segments);
  const int seg = (int)(warp_id % segments);
  const int col = seg * kWarp * VEC + lane * VEC;
  const bool active = col < dv;
  const int begin = row_start[u];
  const int end = row_start[u + 1];

  float grad[VEC];  // gV[r, col .. col+VEC)
  row_grad_segment<VEC>(weights, grad_out, dv, bag_size, readers, begin, end, col, active, lane, grad);
  if (!active) return;

  const int64_t r = row_id[u];
  const int64_t at = r * dv + col;
  float v[VEC];
#pragma unroll
  for (int c = 0; c < VEC; c++) v[c] = values[at + c];

  if constexpr (KIND == kSgd) {
#pragma unroll
    for (int c = 0; c < VEC; c++) v[c] -= opt.lr * grad[c];
  } else if constexpr (KIND == kAdagrad) {
#pragma unroll
    for (int c = 0; c < VEC; c++) {
      const float a = state.accum[at + c] + grad[c] * grad[c];
      state.accum[at + c] = a;
      v[c] -= opt.lr * grad[c] / (sqrtf(a) + opt.eps);
    }
  } else {  // kAdam, lazy: only touched rows, bias correction by this row's own step count t
    const float t = (float)state.steps[r];  // already incremented for this step (≥ 1)
    const float bias1 = 1.f - powf(opt.beta1, t);
    const float bias2 = 1.f - powf(opt.beta2, t);
#pragma unroll
    for (int c = 0; c < VEC; c++) {
      const float m = opt.beta1 * state.moment1[at + c] + (1.f - opt.beta1) * grad[c];
      const float s = opt.beta2 * state.moment2[at + c] + (1.f - opt.beta2) * grad[c] * grad[c];
      state.moment1[at + c] = m;
      state.moment2[at + c] = s;
      v[c] -= opt.lr * (m / bias1) / (sqrtf(s / bias2) + opt.eps);
    }
  }
#pragma unroll
  for (int c = 0; c < VEC; c++) values[at + c] = v[c];
}

// 4'. Partial row-wise Adam: per-element m, one v per row from mean_c(gV²). One warp per touched
// row (the mean needs the whole row): pass 1 sums gV² over the row's segments, pass 2 recomputes
// gV per segment (the readers' gOut rows are in L2 by then) and updates m and V.
__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {  // round to nearest even; NaN stays NaN
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

template <int VEC, bool BF16M>
__global__ void __launch_bounds__(kThreads)
rowwise_adam_kernel(float* __restrict__ values,            // [N, dv]
                    int dv,
                    const float* __restrict__ weights,     // [P]
                    const float* __restrict__ grad_out,    // [B, dv]
                    int bag_size,
                    const int32_t* __restrict__ readers,   // [P]
                    const int32_t* __restrict__ row_start, // [U + 1]
                    const int32_t* __restrict__ row_id,    // [U]
                    int rows_touched, OptimizerConfig opt, OptimizerState state) {
  const int lane = threadIdx.x % kWarp;
  const int64_t u = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  if (u >= rows_touched) return;  // warp-uniform
  const int segments = segments_per_row(dv, VEC);
  const int begin = row_start[u], end = row_start[u + 1];
  const int64_t r = row_id[u];
  float grad[VEC];
  float sq = 0.f;
  for (int seg = 0; seg < segments; seg++) {
    const int col = seg * kWarp * VEC + lane * VEC;
    const bool active = col < dv;
    row_grad_segment<VEC>(weights, grad_out, dv, bag_size, readers, begin, end, col, active, lane, grad);
    if (active) {
#pragma unroll
      for (int c = 0; c < VEC; c++) sq = fmaf(grad[c], grad[c], sq);
    }
  }
  sq = warp_sum(sq);
  const float vr = opt.beta2 * state.row_v[r] + (1.f - opt.beta2) * (sq / (float)dv);
  if (lane == 0) state.row_v[r] = vr;
  const float t = (float)state.steps[r];  // already incremented for this step (≥ 1)
  const float bias1 = 1.f - powf(opt.beta1, t);
  const float bias2 = 1.f - powf(opt.beta2, t);
  const float k = opt.lr / bias1 / (sqrtf(vr / bias2) + opt.eps);
  for (int seg = 0; seg < segments; seg++) {
    const int col = seg * kWarp * VEC + lane * VEC;
    const bool active = col < dv;
    row_grad_segment<VEC>(weights, grad_out, dv, bag_size, readers, begin, end, col, active, lane, grad);
    if (!active) continue;
    const int64_t at = r * dv + col;
#pragma unroll
    for (int c = 0; c < VEC; c++) {
      float m;
      if constexpr (BF16M) {
        m = opt.beta1 * bf16_to_f32(state.moment1_bf16[at + c]) + (1.f - opt.beta1) * grad[c];
        state.moment1_bf16[at + c] = f32_to_bf16(m);
      } else {
        m = opt.beta1 * state.moment1[at + c] + (1.f - opt.beta1) * grad[c];
        state.moment1[at + c] = m;
      }
      values[at + c] -= k * m;
    }
  }
}

template <int VEC, int KIND>
cudaError_t launch_row_step(float* values, int dv, const float* weights, const float* grad_out,
                            int bag_size, const int32_t* readers, const int32_t* row_start,
                            const int32_t* row_id, int rows_touched, const OptimizerConfig& opt,
                            const OptimizerState& state, cudaStream_t stream) {
  const int64_t warps = (int64_t)rows_touched * segments_per_row(dv, VEC);
  row_step_kernel<VEC, KIND><<<blocks_for_warps(warps), kThreads, 0, stream>>>(
      values, dv, weights, grad_out, bag_size, readers, row_start, row_id, rows_touched, opt,
      state);
  return cudaGetLastError();
}

template <int VEC>
cudaError_t launch_row_step_kind(float* values, int dv, const float* weights,
                                 const float* grad_out, int bag_size, const int32_t* readers,
                                 const int32_t* row_start, const int32_t* row_id,
                                 int rows_touched, const OptimizerConfig& opt,
                                 const OptimizerState& state, cudaStream_t stream) {
  switch (opt.kind) {
    case kSgd:
      return launch_row_step<VEC, kSgd>(values, dv, weights, grad_out, bag_size, readers,
                                        row_start, row_id, rows_touched, opt, state, stream);
    case kAdagrad:
      return launch_row_step<VEC, kAdagrad>(values, dv, weights, grad_out, bag_size, readers,
                                            row_start, row_id, rows_touched, opt, state, stream);
    case kAdam:
      if (opt.row_wise) {
        const unsigned blocks = blocks_for_warps(rows_touched);
        if (opt.moment_bf16) {
          rowwise_adam_kernel<VEC, true><<<blocks, kThreads, 0, stream>>>(
              values, dv, weights, grad_out, bag_size, readers, row_start, row_id, rows_touched, opt, state);
        } else {
          rowwise_adam_kernel<VEC, false><<<blocks, kThreads, 0, stream>>>(
              values, dv, weights, grad_out, bag_size, readers, row_start, row_id, rows_touched, opt, state);
        }
        return cudaGetLastError();
      }
      return launch_row_step<VEC, kAdam>(values, dv, weights, grad_out, bag_size, readers,
                                         row_start, row_id, rows_touched, opt, state, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

// Scratch layout inside the caller's workspace, each piece 256-byte aligned.
struct Scratch {
  int32_t* keys;         // [P]
  int32_t* sorted_keys;  // [P]
  int32_t* vals;         // [P]
  int32_t* readers;      // [P]  reverse table
  int32_t* head;         // [P]
  int32_t* head_scan;    // [P]
  int32_t* row_start;    // [P + 1]
  int32_t* row_id;       // [P]
  int32_t* num_rows;     // [1]
  void* cub_temp;
  size_t cub_bytes;
  size_t total;
};

size_t align256(size_t x) { return (x + 255) & ~size_t(255); }

int key_bits(int64_t rows) {  // bits to hold keys 0 … rows (rows = padding key)
  int bits = 1;
  while (bits < 32 && (int64_t(1) << bits) <= rows) bits++;
  return bits;
}

size_t cub_temp_bytes(int positions, int64_t rows) {
  size_t sort_bytes = 0;
  size_t scan_bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const int32_t*)nullptr,
                                  (int32_t*)nullptr, (const int32_t*)nullptr,
                                  (int32_t*)nullptr, positions, 0, key_bits(rows));
  cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, (const int32_t*)nullptr, (int32_t*)nullptr,
                                positions);
  return sort_bytes > scan_bytes ? sort_bytes : scan_bytes;
}

Scratch carve(void* base, int positions, int64_t rows) {
  Scratch s{};
  char* at = static_cast<char*>(base);
  size_t off = 0;
  auto take = [&](size_t count) {
    int32_t* ptr = reinterpret_cast<int32_t*>(at ? at + off : nullptr);
    off += align256(count * sizeof(int32_t));
    return ptr;
  };
  const size_t p = (size_t)positions;
  s.keys = take(p);
  s.sorted_keys = take(p);
  s.vals = take(p);
  s.readers = take(p);
  s.head = take(p);
  s.head_scan = take(p);
  s.row_start = take(p + 1);
  s.row_id = take(p);
  s.num_rows = take(1);
  s.cub_bytes = cub_temp_bytes(positions, rows);
  s.cub_temp = at ? at + off : nullptr;
  off += align256(s.cub_bytes);
  s.total = off;
  return s;
}

}  // namespace

size_t embedding_bag_backward_workspace_bytes(int positions, int64_t rows) {
  return carve(nullptr, positions, rows).total;
}

cudaError_t embedding_bag_backward_step(float* values, int64_t rows, int dv, const int32_t* ids,
                                        const float* weights, const float* grad_out, int batch,
                                        int bag_size, float* grad_weights,
                                        const OptimizerConfig& opt, const OptimizerState& state,
                                        void* workspace, size_t workspace_bytes,
                                        int* host_touched_rows, cudaStream_t stream) {
  *host_touched_rows = 0;
  const int64_t positions64 = (int64_t)batch * bag_size;
  if (positions64 == 0 || dv == 0) return cudaSuccess;
  if (positions64 > INT32_MAX - 1 || rows >= INT32_MAX) return cudaErrorInvalidValue;
  const int positions = (int)positions64;
  const int32_t pad_key = (int32_t)rows;
  Scratch s = carve(workspace, positions, rows);
  if (workspace == nullptr || workspace_bytes < s.total) return cudaErrorInvalidValue;
  if (opt.kind == kAdagrad && state.accum == nullptr) return cudaErrorInvalidValue;
  if (opt.kind == kAdam && !opt.row_wise &&
      (state.moment1 == nullptr || state.moment2 == nullptr || state.steps == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (opt.kind == kAdam && opt.row_wise &&
      (state.row_v == nullptr || state.steps == nullptr ||
       (opt.moment_bf16 ? state.moment1_bf16 == nullptr : state.moment1 == nullptr))) {
    return cudaErrorInvalidValue;
  }
  const bool vec4 = dv % 4 == 0;
  const unsigned blocks_p = (unsigned)((positions + kThreads - 1) / kThreads);
  cudaError_t err;

  // 1. gw with the values before the step.
  if (vec4) {
    gw_kernel<4><<<blocks_for_warps(positions), kThreads, 0, stream>>>(
        values, dv, ids, grad_out, positions, bag_size, grad_weights);
  } else {
    gw_kernel<1><<<blocks_for_warps(positions), kThreads, 0, stream>>>(
        values, dv, ids, grad_out, positions, bag_size, grad_weights);
  }
  if ((err = cudaGetLastError()) != cudaSuccess) return err;

  // 2. reverse index: histogram → prefix sum → scatter (stable), then CSR rows.
  make_keys_kernel<<<blocks_p, kThreads, 0, stream>>>(ids, positions, pad_key, s.keys, s.vals);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  size_t cub_bytes = s.cub_bytes;
  err = cub::DeviceRadixSort::SortPairs(s.cub_temp, cub_bytes, s.keys, s.sorted_keys, s.vals,
                                        s.readers, positions, 0, key_bits(rows), stream);
  if (err != cudaSuccess) return err;
  head_flags_kernel<<<blocks_p, kThreads, 0, stream>>>(s.sorted_keys, positions, pad_key, s.head);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  cub_bytes = s.cub_bytes;
  err = cub::DeviceScan::ExclusiveSum(s.cub_temp, cub_bytes, s.head, s.head_scan, positions,
                                      stream);
  if (err != cudaSuccess) return err;
  if ((err = cudaMemsetAsync(s.num_rows, 0, sizeof(int32_t), stream)) != cudaSuccess) return err;
  csr_rows_kernel<<<blocks_p, kThreads, 0, stream>>>(s.sorted_keys, s.head, s.head_scan,
                                                     positions, pad_key, s.row_start, s.row_id,
                                                     s.num_rows);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  int32_t rows_touched = 0;
  err = cudaMemcpyAsync(&rows_touched, s.num_rows, sizeof(int32_t), cudaMemcpyDeviceToHost, stream);
  if (err != cudaSuccess) return err;
  if ((err = cudaStreamSynchronize(stream)) != cudaSuccess) return err;
  *host_touched_rows = rows_touched;
  if (rows_touched == 0) return cudaSuccess;  // every position was padding

  // 3. lazy Adam: this step counts for the touched rows only.
  if (opt.kind == kAdam) {
    bump_steps_kernel<<<(rows_touched + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
        s.row_id, rows_touched, state.steps);
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
  }

  // 4. per-row gradient sum and fused optimizer step.
  if (vec4) {
    return launch_row_step_kind<4>(values, dv, weights, grad_out, bag_size, s.readers,
                                   s.row_start, s.row_id, rows_touched, opt, state, stream);
  }
  return launch_row_step_kind<1>(values, dv, weights, grad_out, bag_size, s.readers, s.row_start,
                                 s.row_id, rows_touched, opt, state, stream);
}

}  // namespace mnemo
