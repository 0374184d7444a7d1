// N-API binding of the fused kernels (fused.cc), one entry point:
//
//   fusedF32(heap: Float32Array, op, args: Float64Array)   heap offsets in floats, then sizes
//     op 0 siluMul        [g, u, y, n]
//     op 1 siluMulGrad    [g, u, dy, dg, du, n]
//     op 2 maskedSoftmax  [x, mask (−1: none), y, batch, heads, rows, S, maskPerBatch]
//     op 3 softmaxGrad    [y, dy, dx, nRows, S]
//     op 4 rmsNorm        [x, g, y, nRows, D, eps]
//     op 5 rmsNormGrad    [x, g, dy, dx, dg, nRows, D, eps]
//
// Shapes are checked in src/fused-ops.ts; here every operand's range is checked against the heap,
// so a wrong call throws instead of writing outside it.
#include <napi.h>

#include <cstdint>
#include <string>

#include "fused.h"

namespace mnemo {

namespace {

Napi::Value fail(const Napi::Env& env, const std::string& msg) {
  Napi::TypeError::New(env, "mnemo_cpu: fusedF32: " + msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value FusedF32(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[2].IsTypedArray()) return fail(env, "expects (heap, op, args)");
  const Napi::TypedArray h = info[0].As<Napi::TypedArray>(), a = info[2].As<Napi::TypedArray>();
  if (h.TypedArrayType() != napi_float32_array || a.TypedArrayType() != napi_float64_array) {
    return fail(env, "heap must be a Float32Array and args a Float64Array");
  }
  float* heap = reinterpret_cast<float*>(static_cast<uint8_t*>(h.ArrayBuffer().Data()) + h.ByteOffset());
  const int64_t len = static_cast<int64_t>(h.ElementLength());
  const double* v = reinterpret_cast<const double*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  const size_t nargs = a.ElementLength();
  const int op = info[1].As<Napi::Number>().Int32Value();
  static const size_t want[] = {4, 6, 8, 5, 6, 8};
  if (op < 0 || op > 5) return fail(env, "op must be 0..5");
  if (nargs != want[op]) return fail(env, "op " + std::to_string(op) + " takes " + std::to_string(want[op]) + " args");
  const auto I = [&](size_t i) { return static_cast<int64_t>(v[i]); };
  bool ok = true;
  // pointer to heap[off, off + count), or nullptr (and ok = false) when outside it
  const auto at = [&](int64_t off, int64_t count) -> float* {
    if (off < 0 || count < 0 || off + count > len) {
      ok = false;
      return nullptr;
    }
    return heap + off;
  };
  switch (op) {
    case 0: {
      const int64_t n = I(3);
      float *g = at(I(0), n), *u = at(I(1), n), *y = at(I(2), n);
      if (!ok) break;
      silu_mul(g, u, y, n);
      break;
    }
    case 1: {
      const int64_t n = I(5);
      float *g = at(I(0), n), *u = at(I(1), n), *dy = at(I(2), n), *dg = at(I(3), n), *du = at(I(4), n);
      if (!ok) break;
      silu_mul_grad(g, u, dy, dg, du, n);
      break;
    }
    case 2: {
      const int64_t B = I(3), H = I(4), R = I(5), S = I(6);
      const bool per_batch = v[7] != 0;
      const int64_t n = B * H * R * S;
      float *x = at(I(0), n), *y = at(I(2), n);
      float* m = I(1) < 0 ? nullptr : at(I(1), (per_batch ? B : 1) * R * S);
      if (!ok || B < 0 || H < 0 || R < 0 || S < 1) break;
      masked_softmax(x, m, y, B, H, R, S, per_batch);
      break;
    }
    case 3: {
      const int64_t rows = I(3), S = I(4);
      float *y = at(I(0), rows * S), *dy = at(I(1), rows * S), *dx = at(I(2), rows * S);
      if (!ok || rows < 0 || S < 1) break;
      softmax_grad(y, dy, dx, rows, S);
      break;
    }
    case 4: {
      const int64_t rows = I(3), D = I(4);
      float *x = at(I(0), rows * D), *g = at(I(1), D), *y = at(I(2), rows * D);
      if (!ok || rows < 0 || D < 1) break;
      rms_norm(x, g, y, rows, D, static_cast<float>(v[5]));
      break;
    }
    default: {
      const int64_t rows = I(5), D = I(6);
      float *x = at(I(0), rows * D), *g = at(I(1), D), *dy = at(I(2), rows * D), *dx = at(I(3), rows * D), *dg = at(I(4), D);
      if (!ok || rows < 0 || D < 1) break;
      rms_norm_grad(x, g, dy, dx, dg, rows, D, static_cast<float>(v[7]));
    }
  }
  if (!ok) return fail(env, "op " + std::to_string(op) + ": an operand lies outside the heap or a size is invalid");
  return env.Undefined();
}

}  // namespace

void register_fused_napi(Napi::Env env, Napi::Object exports) {
  exports.Set("fusedF32", Napi::Function::New(env, FusedF32));
}

}  // namespace mnemo
