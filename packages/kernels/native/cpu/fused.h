// Fused float32 kernels of the model's elementwise chains (fused.cc has the math), forward and
// backward, row-major, all cores for large tensors.
#pragma once

#include <cstdint>

namespace mnemo {

// y = g·σ(g)·u [n];  its gradient: dg, du [n] from dy [n].
void silu_mul(const float* g, const float* u, float* y, int64_t n);
void silu_mul_grad(const float* g, const float* u, const float* dy, float* dg, float* du, int64_t n);

// y = softmax(x + mask) over the last axis: x, y [batch, heads, rows, S]; mask (nullable)
// [batch | 1, 1, rows, S] (its own per batch row when mask_per_batch); the gradient dx from y, dy.
void masked_softmax(const float* x, const float* mask, float* y, int64_t batch, int64_t heads, int64_t rows, int64_t S,
                    bool mask_per_batch);
void softmax_grad(const float* y, const float* dy, float* dx, int64_t n_rows, int64_t S);

// y = x·r·g per row of D, r = 1/√(mean(x²) + eps): x, y, dy, dx [n_rows, D], g, dg [D].
void rms_norm(const float* x, const float* g, float* y, int64_t n_rows, int64_t D, float eps);
void rms_norm_grad(const float* x, const float* g, const float* dy, float* dx, float* dg, int64_t n_rows, int64_t D,
                   float eps);

}  // namespace mnemo
