// Entry points of the Mnemo CPU kernels (called by addon.cc). Arrays are raw, validated by the
// TypeScript op layer; ids = -1 is padding (skipped).
#pragma once

#include <cstdint>

#include "optimizers.h"

namespace mnemo {

// out[b] = Σ_j w[b,j] · V[ids[b,j]]                 values [N, dv]; ids, w [B, K]; out [B, dv]
void bag_forward(const void* values, int dtype, int dim, const int32_t* ids, const float* w,
                 int64_t batch, int bag_size, float* out);

// gw[b,j] = <gOut[b], V[ids[b,j]]> (when gw != null), and when `opt` != null the fused update
// of every touched row r with gV[r] = Σ_{(b,j): ids[b,j]=r} w[b,j]·gOut[b]. Returns rows touched.
int64_t bag_backward(void* values, int dtype, int dim, const int32_t* ids, const float* w,
                     const float* g_out, int64_t batch, int bag_size, float* gw,
                     const OptimizerParams* opt, const OptimizerState& state);

// The roofline: out[b] = Σ_j V[ids[b,j]], a plain gather-and-sum (optionally with prefetch).
void roofline_gather_sum(const float* values, int dim, const int32_t* ids, int64_t batch,
                         int bag_size, float* out, bool prefetch);

// The state-traffic roofline of a fused sparse update: for each row r of `rows` (sorted, distinct),
// bytes [r·row_bytes[i], (r+1)·row_bytes[i]) of every array i are read and written back (XOR with
// `mask`: 0 keeps the values, the traffic is the same); rows split across threads, the backward's
// prefetch distance. No gradient and no optimizer math: what moving the optimizer's bytes costs.
void roofline_row_rmw(uint8_t* const* arrays, const int64_t* row_bytes, int n_arrays, const int32_t* rows,
                      int64_t n_rows, uint32_t mask);

// Product-key top-k (docs/design.md §1): queries [B, H, dk], subkeys [H, 2, n, dk/2] →
// scores, ids [B, H, k]; descending, ties → lower id; float64 dot products.
void pk_topk(const float* queries, const float* subkeys, int batch, int heads, int n, int dk,
             int k, float* scores, int32_t* ids);

// Backward of pk_topk: grad, ids [B, H, k] → dq += [B, H, dk], dkeys += [H, 2, n, dk/2]
// (both zero-initialised by the caller); only the selected sub-key rows are touched.
void pk_backward(const float* grad, const int32_t* ids, const float* queries, const float* subkeys,
                 int batch, int heads, int n, int dk, int k, float* dq, float* dkeys);

// Software-prefetch distances in rows (forward/roofline, backward); a tuning knob for benchmarks.
void set_prefetch(int forward_rows, int backward_rows);

// Input scans for the op's validation: first id outside [-1, rows) / first NaN or Inf; -1 if none.
int64_t first_bad_id(const int32_t* ids, int64_t n, int64_t rows);
int64_t first_non_finite(const float* x, int64_t n);

// fnv1a over 32-bit little-endian words (a trailing partial word zero-padded).
uint32_t checksum_words(const uint8_t* bytes, int64_t n, uint32_t seed);

}  // namespace mnemo
