// Host entry points of the Mnemo CUDA kernels. Plain C++ (compiled by g++ in addon.cc and by
// nvcc in the .cu files). Every pointer here is DEVICE memory unless named host_*.
// All launches go to `stream`; functions return the first CUDA error they meet.
#pragma once

#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>

namespace mnemo {

// ---- embedding bag forward (embedding_bag_fwd.cu) --------------------------------------
// out[b, :] = Σ_j weights[b, j] · values[ids[b, j], :]; ids[b, j] = -1 is padding (skipped).
//   values [rows, dv], ids [batch, bag_size], weights [batch, bag_size], out [batch, dv]
cudaError_t embedding_bag_forward(const float* values, int dv, const int32_t* ids,
                                  const float* weights, int batch, int bag_size, float* out,
                                  cudaStream_t stream);

// ---- embedding bag backward + fused optimizer step (embedding_bag_bwd.cu) ----------------
enum OptimizerKind : int { kSgd = 0, kAdagrad = 1, kAdam = 2 };

struct OptimizerConfig {
  int kind;     // OptimizerKind
  float lr;     // learning rate
  float beta1;  // Adam first-moment decay
  float beta2;  // Adam second-moment decay
  float eps;    // Adagrad / Adam denominator epsilon
  int row_wise = 0;     // Adam: 1 = one second moment per row (partial row-wise Adam)
  int moment_bf16 = 0;  // row-wise Adam: m stored as bfloat16 (rounded once per update)
};

// Per-row optimizer state, allocated by the caller for the kind in use (others may be null).
struct OptimizerState {
  float* accum;     // Adagrad Σ g²        [rows, dv]
  float* moment1;   // Adam m              [rows, dv]
  float* moment2;   // Adam v              [rows, dv]
  int32_t* steps;   // Adam per-row step t [rows]
  uint16_t* moment1_bf16 = nullptr;  // row-wise Adam with bf16 m [rows, dv] (moment1 unused)
  float* row_v = nullptr;            // row-wise Adam second moment per row [rows] (moment2 unused)
};

// Bytes of device scratch that embedding_bag_backward_step needs for `positions` = batch·bag_size.
size_t embedding_bag_backward_workspace_bytes(int positions, int64_t rows);

// grad_weights[b, j] = <grad_out[b], values[ids[b, j]]>  (values BEFORE the step; 0 for padding)
// gV[r] = Σ_{(b,j): ids[b,j] = r} weights[b, j] · grad_out[b]   (per touched row, never stored)
// then values[r] ← optimizer(values[r], gV[r]) for every touched row r, written once.
//   ids, weights, grad_weights [batch, bag_size]; grad_out [batch, dv]; values [rows, dv]
// *host_touched_rows receives the number of distinct rows updated.
cudaError_t embedding_bag_backward_step(float* values, int64_t rows, int dv, const int32_t* ids,
                                        const float* weights, const float* grad_out, int batch,
                                        int bag_size, float* grad_weights,
                                        const OptimizerConfig& opt, const OptimizerState& state,
                                        void* workspace, size_t workspace_bytes,
                                        int* host_touched_rows, cudaStream_t stream);

// ---- fused product-key top-k (pk_topk.cu) ------------------------------------------------
// queries [batch, heads, dk]; subkeys [heads, 2, n, dk/2] → scores, ids [batch, heads, k]
// (descending; ties: lower slot id first; slot id = i·n + j).
// `scratch` holds the half scores when they do not fit in shared memory:
// pk_topk_scratch_floats() floats, or null when that is 0.
size_t pk_topk_scratch_floats(int batch, int heads, int n, int dk, int k, int device);
cudaError_t pk_topk(const float* queries, const float* subkeys, int batch, int heads, int n,
                    int dk, int k, float* scores, int32_t* ids, float* scratch, int device,
                    cudaStream_t stream);

}  // namespace mnemo
