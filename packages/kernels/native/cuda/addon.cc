// N-API addon `mnemo_cuda`: device value tables, embedding-bag forward / backward + fused
// optimizer step, product-key top-k. Written against the C N-API (node_api.h, ABI-stable, no
// extra dependency). cudart is linked statically, so this file loads on machines without any
// CUDA library; without a driver or GPU, deviceCount() answers { count: 0, reason } instead
// of throwing, and every other entry point throws an Error with the CUDA reason.
//
// Exports (validated again in src/cuda.ts; here only what protects memory is checked):
//   deviceCount() → { count, reason, device }
//   tableCreate(values: Float32Array [rows·dv], rows, dv) → handle
//   tableUpload(handle, values), tableDownload(handle) → Float32Array, tableFree(handle)
//   tableForward(handle, ids: Int32Array [B·L], weights: Float32Array [B·L], batch, bagSize)
//     → Float32Array [B·dv]
//   tableBackwardStep(handle, ids, weights, gradOut: Float32Array [B·dv], batch, bagSize,
//     kind (0 sgd | 1 adagrad | 2 adam), lr, beta1, beta2, eps[, rowWise 0|1[, momentBf16 0|1]])
//     (rowWise: partial row-wise Adam, one v per row; momentBf16: its m stored as bfloat16)
//     → { gradWeights: Float32Array [B·L], touchedRows }
//   tableStateDownload(handle, name) → Uint8Array of the optimizer-state buffer `name`, or null
//     while it is not allocated (it is all zeros then); tableStateUpload(handle, name, bytes:
//     Uint8Array) allocates it when needed and copies `bytes` in (save/load of src/cuda.ts).
//     name: accum | moment1 | moment2 | steps | moment1_bf16 | row_v (see DeviceTable).
//   pkTopK(queries [B·H·dk], subkeys [H·2·n·dk/2], batch, heads, n, dk, k)
//     → { scores: Float32Array [B·H·k], ids: Int32Array [B·H·k] }
#include <node_api.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels.h"

namespace {

// ---- N-API plumbing ----------------------------------------------------------------------

// Thrown as a C++ exception inside an entry point, turned into a JS Error at the boundary.
struct JsError {
  std::string message;
};

void check_napi(napi_env env, napi_status status, const char* what) {
  if (status == napi_ok) return;
  const napi_extended_error_info* info = nullptr;
  napi_get_last_error_info(env, &info);
  std::string msg = std::string("N-API call failed: ") + what;
  if (info != nullptr && info->error_message != nullptr) msg += std::string(": ") + info->error_message;
  throw JsError{msg};
}

void cuda_ok(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky-free error state
  throw JsError{std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                ")"};
}

template <typename Fn>
napi_value guarded(napi_env env, Fn&& fn) {
  try {
    return fn();
  } catch (const JsError& e) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, "MNEMO_CUDA", e.message.c_str());
    return nullptr;
  }
}

struct Args {
  napi_value argv[13];
  size_t argc = 13;
};

Args get_args(napi_env env, napi_callback_info info, size_t need, const char* fn) {
  Args a;
  check_napi(env, napi_get_cb_info(env, info, &a.argc, a.argv, nullptr, nullptr), "get_cb_info");
  if (a.argc < need) throw JsError{std::string(fn) + ": expected " + std::to_string(need) + " arguments"};
  return a;
}

template <typename T>
struct TypedView {
  T* data;
  size_t length;
};

template <typename T>
TypedView<T> typed_array(napi_env env, napi_value v, napi_typedarray_type want, const char* field) {
  bool is_ta = false;
  check_napi(env, napi_is_typedarray(env, v, &is_ta), "is_typedarray");
  if (!is_ta) throw JsError{std::string(field) + ": expected a typed array"};
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  check_napi(env, napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr),
          "get_typedarray_info");
  if (type != want) throw JsError{std::string(field) + ": wrong typed array kind"};
  return {static_cast<T*>(data), length};
}

int64_t int_arg(napi_env env, napi_value v, const char* field, int64_t lo, int64_t hi) {
  int64_t x = 0;
  napi_valuetype t;
  check_napi(env, napi_typeof(env, v, &t), "typeof");
  if (t != napi_number) throw JsError{std::string(field) + ": expected a number"};
  check_napi(env, napi_get_value_int64(env, v, &x), "get_value_int64");
  if (x < lo || x > hi) throw JsError{std::string(field) + ": out of range"};
  return x;
}

float float_arg(napi_env env, napi_value v, const char* field) {
  double x = 0;
  check_napi(env, napi_get_value_double(env, v, &x), field);
  return static_cast<float>(x);
}

template <typename T>
napi_value new_typed_array(napi_env env, napi_typedarray_type type, size_t length, T** data) {
  napi_value ab;
  napi_value ta;
  void* raw = nullptr;
  check_napi(env, napi_create_arraybuffer(env, length * sizeof(T), &raw, &ab), "create_arraybuffer");
  check_napi(env, napi_create_typedarray(env, type, length, ab, 0, &ta), "create_typedarray");
  *data = static_cast<T*>(raw);
  return ta;
}

void set_prop(napi_env env, napi_value obj, const char* name, napi_value v) {
  check_napi(env, napi_set_named_property(env, obj, name, v), name);
}

napi_value num(napi_env env, double x) {
  napi_value v;
  check_napi(env, napi_create_double(env, x, &v), "create_double");
  return v;
}

// ---- device choice -------------------------------------------------------------------------

struct DeviceProbe {
  int count = 0;       // devices with compute capability ≥ 8.0 (the sm_80 / sm_90 / PTX build)
  int device = -1;     // first usable one
  std::string reason;  // why count is 0, or "" when usable
};

DeviceProbe probe_devices() {
  DeviceProbe p;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    p.reason = std::string("CUDA not usable: ") + cudaGetErrorName(err) + " (" +
               cudaGetErrorString(err) + ")";
    return p;
  }
  if (n == 0) {
    p.reason = "no CUDA device visible";
    return p;
  }
  for (int d = 0; d < n; d++) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    if (major >= 8) {
      if (p.device < 0) p.device = d;
      p.count++;
    }
  }
  if (p.count == 0) {
    p.reason = std::to_string(n) + " CUDA device(s) visible, none with compute capability >= 8.0";
  }
  return p;
}

const DeviceProbe& devices() {
  static const DeviceProbe probe = probe_devices();
  return probe;
}

int usable_device() {
  const DeviceProbe& p = devices();
  if (p.count == 0) throw JsError{p.reason};
  cuda_ok(cudaSetDevice(p.device), "cudaSetDevice");
  return p.device;
}

// ---- device buffers --------------------------------------------------------------------------

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;

  void* ensure(size_t need, const char* what) {
    if (need <= bytes) return ptr;
    release();
    cuda_ok(cudaMalloc(&ptr, need), what);
    bytes = need;
    return ptr;
  }
  void release() {
    if (ptr != nullptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
  }
};

// Device value table V [rows, dv], its optimizer state (allocated on first use of a kind) and
// grow-only scratch for the per-call inputs and outputs.
struct DeviceTable {
  int device = 0;
  int64_t rows = 0;
  int dv = 0;
  bool freed = false;
  DeviceBuffer values;    // [rows, dv]
  DeviceBuffer accum;     // Adagrad Σ g² [rows, dv]
  DeviceBuffer moment1;   // Adam m [rows, dv]
  DeviceBuffer moment2;   // Adam v [rows, dv]
  DeviceBuffer steps;     // Adam t [rows]
  DeviceBuffer moment1_bf16;  // row-wise Adam bf16 m [rows, dv]
  DeviceBuffer row_v;     // row-wise Adam v [rows]
  DeviceBuffer ids;       // [B, L]
  DeviceBuffer weights;   // [B, L]
  DeviceBuffer grad_out;  // [B, dv]
  DeviceBuffer result;    // forward out [B, dv] or gw [B, L]
  DeviceBuffer workspace; // backward reverse index

  size_t table_bytes() const { return (size_t)rows * dv * sizeof(float); }

  void release_all() {
    if (freed) return;
    cudaSetDevice(device);
    for (DeviceBuffer* b : {&values, &accum, &moment1, &moment2, &steps, &moment1_bf16, &row_v, &ids, &weights,
                            &grad_out, &result, &workspace}) {
      b->release();
    }
    freed = true;
  }
};

void finalize_table(napi_env, void* data, void*) {
  DeviceTable* t = static_cast<DeviceTable*>(data);
  t->release_all();
  delete t;
}

DeviceTable* table_arg(napi_env env, napi_value v) {
  napi_valuetype type;
  check_napi(env, napi_typeof(env, v, &type), "typeof");
  if (type != napi_external) throw JsError{"handle: not a CUDA table handle"};
  void* data = nullptr;
  check_napi(env, napi_get_value_external(env, v, &data), "get_value_external");
  DeviceTable* t = static_cast<DeviceTable*>(data);
  if (t->freed) throw JsError{"handle: the CUDA table was freed"};
  cuda_ok(cudaSetDevice(t->device), "cudaSetDevice");
  return t;
}

// ---- entry points ------------------------------------------------------------------------------

napi_value DeviceCount(napi_env env, napi_callback_info) {
  return guarded(env, [&] {
    const DeviceProbe& p = devices();
    napi_value out;
    check_napi(env, napi_create_object(env, &out), "create_object");
    set_prop(env, out, "count", num(env, p.count));
    set_prop(env, out, "device", num(env, p.device));
    napi_value reason;
    check_napi(env, napi_create_string_utf8(env, p.reason.c_str(), p.reason.size(), &reason), "string");
    set_prop(env, out, "reason", reason);
    return out;
  });
}

void upload_values(napi_env env, DeviceTable* t, napi_value v) {
  TypedView<float> host = typed_array<float>(env, v, napi_float32_array, "values");
  if (host.length != (size_t)t->rows * t->dv) throw JsError{"values: length must be rows * dv"};
  cuda_ok(cudaMemcpy(t->values.ptr, host.data, t->table_bytes(), cudaMemcpyHostToDevice),
          "upload values");
}

napi_value TableCreate(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 3, "tableCreate");
    const int device = usable_device();
    DeviceTable* t = new DeviceTable();
    t->device = device;
    try {
      t->rows = int_arg(env, a.argv[1], "rows", 1, INT32_MAX - 1);
      t->dv = (int)int_arg(env, a.argv[2], "dv", 1, INT32_MAX / 4);
      t->values.ensure(t->table_bytes(), "cudaMalloc values");
      upload_values(env, t, a.argv[0]);
    } catch (...) {
      t->release_all();
      delete t;
      throw;
    }
    napi_value handle;
    napi_status st = napi_create_external(env, t, finalize_table, nullptr, &handle);
    if (st != napi_ok) {
      t->release_all();
      delete t;
      check_napi(env, st, "create_external");
    }
    return handle;
  });
}

napi_value TableUpload(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 2, "tableUpload");
    upload_values(env, table_arg(env, a.argv[0]), a.argv[1]);
    napi_value undef;
    napi_get_undefined(env, &undef);
    return undef;
  });
}

napi_value TableDownload(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 1, "tableDownload");
    DeviceTable* t = table_arg(env, a.argv[0]);
    float* host = nullptr;
    napi_value out = new_typed_array(env, napi_float32_array, (size_t)t->rows * t->dv, &host);
    cuda_ok(cudaMemcpy(host, t->values.ptr, t->table_bytes(), cudaMemcpyDeviceToHost),
            "download values");
    return out;
  });
}

napi_value TableFree(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 1, "tableFree");
    void* data = nullptr;
    check_napi(env, napi_get_value_external(env, a.argv[0], &data), "get_value_external");
    static_cast<DeviceTable*>(data)->release_all();  // the finalizer deletes the struct later
    napi_value undef;
    napi_get_undefined(env, &undef);
    return undef;
  });
}

// The optimizer-state buffer `name` of a table and its size in bytes.
struct StateSlot {
  DeviceBuffer* buffer;
  size_t bytes;
};

StateSlot state_slot(DeviceTable* t, const std::string& name) {
  const size_t elems = (size_t)t->rows * t->dv;
  const size_t rows = (size_t)t->rows;
  if (name == "accum") return {&t->accum, elems * 4};
  if (name == "moment1") return {&t->moment1, elems * 4};
  if (name == "moment2") return {&t->moment2, elems * 4};
  if (name == "moment1_bf16") return {&t->moment1_bf16, elems * 2};
  if (name == "steps") return {&t->steps, rows * 4};
  if (name == "row_v") return {&t->row_v, rows * 4};
  throw JsError{"name: unknown optimizer-state buffer '" + name + "'"};
}

std::string string_arg(napi_env env, napi_value v, const char* field) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &length) != napi_ok) {
    throw JsError{std::string(field) + ": expected a string"};
  }
  std::string out(length, '\0');
  check_napi(env, napi_get_value_string_utf8(env, v, out.data(), length + 1, &length), field);
  return out;
}

napi_value TableStateDownload(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 2, "tableStateDownload");
    DeviceTable* t = table_arg(env, a.argv[0]);
    const StateSlot slot = state_slot(t, string_arg(env, a.argv[1], "name"));
    napi_value out;
    if (slot.buffer->ptr == nullptr) {
      check_napi(env, napi_get_null(env, &out), "get_null");
      return out;
    }
    uint8_t* host = nullptr;
    out = new_typed_array(env, napi_uint8_array, slot.bytes, &host);
    cuda_ok(cudaMemcpy(host, slot.buffer->ptr, slot.bytes, cudaMemcpyDeviceToHost), "download optimizer state");
    return out;
  });
}

napi_value TableStateUpload(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 3, "tableStateUpload");
    DeviceTable* t = table_arg(env, a.argv[0]);
    const StateSlot slot = state_slot(t, string_arg(env, a.argv[1], "name"));
    TypedView<uint8_t> host = typed_array<uint8_t>(env, a.argv[2], napi_uint8_array, "bytes");
    if (host.length != slot.bytes) throw JsError{"bytes: length must be " + std::to_string(slot.bytes)};
    slot.buffer->ensure(slot.bytes, "cudaMalloc optimizer state");
    cuda_ok(cudaMemcpy(slot.buffer->ptr, host.data, slot.bytes, cudaMemcpyHostToDevice), "upload optimizer state");
    napi_value undef;
    napi_get_undefined(env, &undef);
    return undef;
  });
}

struct BagInputs {
  int batch;
  int bag_size;
  TypedView<int32_t> ids;   // [B, L]
  TypedView<float> weights; // [B, L]
};

// Reads (ids, weights, batch, bagSize) at argv[first..first+3], checks lengths and id range,
// and copies ids and weights to the table's device scratch.
BagInputs bag_inputs(napi_env env, DeviceTable* t, napi_value* argv, int ids_at, int batch_at) {
  BagInputs in;
  in.ids = typed_array<int32_t>(env, argv[ids_at], napi_int32_array, "ids");
  in.weights = typed_array<float>(env, argv[ids_at + 1], napi_float32_array, "weights");
  in.batch = (int)int_arg(env, argv[batch_at], "batch", 0, INT32_MAX);
  in.bag_size = (int)int_arg(env, argv[batch_at + 1], "bagSize", 0, INT32_MAX);
  const int64_t positions = (int64_t)in.batch * in.bag_size;
  if (positions > INT32_MAX - 1) throw JsError{"batch * bagSize: must be < 2^31 - 1"};
  if (in.ids.length != (size_t)positions) throw JsError{"ids: length must be batch * bagSize"};
  if (in.weights.length != (size_t)positions) throw JsError{"weights: length must be batch * bagSize"};
  for (size_t p = 0; p < in.ids.length; p++) {  // an id out of range would read foreign memory
    const int32_t id = in.ids.data[p];
    if (id < -1 || id >= t->rows) {
      throw JsError{"ids: element " + std::to_string(p) + " is " + std::to_string(id) +
                    ", outside [-1, rows)"};
    }
  }
  if (positions > 0) {
    const size_t bytes = (size_t)positions * 4;
    t->ids.ensure(bytes, "cudaMalloc ids");
    t->weights.ensure(bytes, "cudaMalloc weights");
    cuda_ok(cudaMemcpy(t->ids.ptr, in.ids.data, bytes, cudaMemcpyHostToDevice), "upload ids");
    cuda_ok(cudaMemcpy(t->weights.ptr, in.weights.data, bytes, cudaMemcpyHostToDevice),
            "upload weights");
  }
  return in;
}

napi_value TableForward(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 5, "tableForward");
    DeviceTable* t = table_arg(env, a.argv[0]);
    BagInputs in = bag_inputs(env, t, a.argv, 1, 3);
    const size_t out_len = (size_t)in.batch * t->dv;
    float* host = nullptr;
    napi_value out = new_typed_array(env, napi_float32_array, out_len, &host);
    if (out_len == 0) return out;
    if (in.bag_size == 0) {
      std::memset(host, 0, out_len * 4);  // every bag empty
      return out;
    }
    float* dev_out = static_cast<float*>(t->result.ensure(out_len * 4, "cudaMalloc out"));
    cuda_ok(mnemo::embedding_bag_forward(static_cast<const float*>(t->values.ptr), t->dv,
                                         static_cast<const int32_t*>(t->ids.ptr),
                                         static_cast<const float*>(t->weights.ptr), in.batch,
                                         in.bag_size, dev_out, nullptr),
            "embedding_bag_forward");
    cuda_ok(cudaMemcpy(host, dev_out, out_len * 4, cudaMemcpyDeviceToHost), "download out");
    return out;
  });
}

napi_value TableBackwardStep(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 11, "tableBackwardStep");
    DeviceTable* t = table_arg(env, a.argv[0]);
    BagInputs in = bag_inputs(env, t, a.argv, 1, 4);
    TypedView<float> grad_out = typed_array<float>(env, a.argv[3], napi_float32_array, "gradOut");
    if (grad_out.length != (size_t)in.batch * t->dv) throw JsError{"gradOut: length must be batch * dv"};
    mnemo::OptimizerConfig opt;
    opt.kind = (int)int_arg(env, a.argv[6], "kind", 0, 2);
    opt.lr = float_arg(env, a.argv[7], "lr");
    opt.beta1 = float_arg(env, a.argv[8], "beta1");
    opt.beta2 = float_arg(env, a.argv[9], "beta2");
    opt.eps = float_arg(env, a.argv[10], "eps");
    opt.row_wise = a.argc > 11 ? (int)int_arg(env, a.argv[11], "rowWise", 0, 1) : 0;
    opt.moment_bf16 = a.argc > 12 ? (int)int_arg(env, a.argv[12], "momentBf16", 0, 1) : 0;
    if (opt.moment_bf16 && !(opt.kind == mnemo::kAdam && opt.row_wise)) {
      throw JsError{"momentBf16: needs kind adam with rowWise 1"};
    }

    const size_t positions = (size_t)in.batch * in.bag_size;
    float* host_gw = nullptr;
    napi_value gw = new_typed_array(env, napi_float32_array, positions, &host_gw);
    int touched = 0;
    if (positions > 0) {
      // optimizer state of this kind, zero-initialised on first use
      mnemo::OptimizerState state{nullptr, nullptr, nullptr, nullptr};
      auto zeroed = [&](DeviceBuffer& b, size_t bytes, const char* what) {
        if (b.ptr == nullptr) {
          b.ensure(bytes, what);
          cuda_ok(cudaMemset(b.ptr, 0, bytes), what);
        }
        return b.ptr;
      };
      if (opt.kind == mnemo::kAdagrad) {
        state.accum = static_cast<float*>(zeroed(t->accum, t->table_bytes(), "cudaMalloc adagrad state"));
      } else if (opt.kind == mnemo::kAdam && opt.row_wise) {
        if (opt.moment_bf16) {
          state.moment1_bf16 = static_cast<uint16_t*>(zeroed(t->moment1_bf16, (size_t)t->rows * t->dv * 2, "cudaMalloc adam bf16 m"));
        } else {
          state.moment1 = static_cast<float*>(zeroed(t->moment1, t->table_bytes(), "cudaMalloc adam m"));
        }
        state.row_v = static_cast<float*>(zeroed(t->row_v, (size_t)t->rows * 4, "cudaMalloc adam row v"));
        state.steps = static_cast<int32_t*>(zeroed(t->steps, (size_t)t->rows * 4, "cudaMalloc adam steps"));
      } else if (opt.kind == mnemo::kAdam) {
        state.moment1 = static_cast<float*>(zeroed(t->moment1, t->table_bytes(), "cudaMalloc adam m"));
        state.moment2 = static_cast<float*>(zeroed(t->moment2, t->table_bytes(), "cudaMalloc adam v"));
        state.steps = static_cast<int32_t*>(zeroed(t->steps, (size_t)t->rows * 4, "cudaMalloc adam steps"));
      }
      const size_t go_bytes = grad_out.length * 4;
      t->grad_out.ensure(go_bytes, "cudaMalloc gradOut");
      cuda_ok(cudaMemcpy(t->grad_out.ptr, grad_out.data, go_bytes, cudaMemcpyHostToDevice),
              "upload gradOut");
      float* dev_gw = static_cast<float*>(t->result.ensure(positions * 4, "cudaMalloc gw"));
      const size_t ws_bytes = mnemo::embedding_bag_backward_workspace_bytes((int)positions, t->rows);
      void* ws = t->workspace.ensure(ws_bytes, "cudaMalloc backward workspace");
      cuda_ok(mnemo::embedding_bag_backward_step(
                  static_cast<float*>(t->values.ptr), t->rows, t->dv,
                  static_cast<const int32_t*>(t->ids.ptr), static_cast<const float*>(t->weights.ptr),
                  static_cast<const float*>(t->grad_out.ptr), in.batch, in.bag_size, dev_gw, opt,
                  state, ws, ws_bytes, &touched, nullptr),
              "embedding_bag_backward_step");
      cuda_ok(cudaMemcpy(host_gw, dev_gw, positions * 4, cudaMemcpyDeviceToHost), "download gw");
    }
    napi_value out;
    check_napi(env, napi_create_object(env, &out), "create_object");
    set_prop(env, out, "gradWeights", gw);
    set_prop(env, out, "touchedRows", num(env, touched));
    return out;
  });
}

napi_value PkTopK(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a = get_args(env, info, 7, "pkTopK");
    const int device = usable_device();
    TypedView<float> q = typed_array<float>(env, a.argv[0], napi_float32_array, "queries");
    TypedView<float> keys = typed_array<float>(env, a.argv[1], napi_float32_array, "subkeys");
    const int batch = (int)int_arg(env, a.argv[2], "batch", 1, INT32_MAX);
    const int heads = (int)int_arg(env, a.argv[3], "heads", 1, INT32_MAX);
    const int n = (int)int_arg(env, a.argv[4], "n", 1, 46340);
    const int dk = (int)int_arg(env, a.argv[5], "dk", 2, INT32_MAX);
    const int k = (int)int_arg(env, a.argv[6], "k", 1, n);
    if (dk % 2 != 0) throw JsError{"dk: must be even"};
    if (q.length != (size_t)batch * heads * dk) throw JsError{"queries: length must be batch * heads * dk"};
    if (keys.length != (size_t)heads * n * dk) throw JsError{"subkeys: length must be heads * n * dk"};
    const size_t out_len = (size_t)batch * heads * k;
    float* host_scores = nullptr;
    int32_t* host_ids = nullptr;
    napi_value scores = new_typed_array(env, napi_float32_array, out_len, &host_scores);
    napi_value ids = new_typed_array(env, napi_int32_array, out_len, &host_ids);

    // one-shot buffers (pk top-k has no table to cache them in)
    DeviceBuffer d_q, d_keys, d_scores, d_ids, d_scratch;
    try {
      d_q.ensure(q.length * 4, "cudaMalloc queries");
      d_keys.ensure(keys.length * 4, "cudaMalloc subkeys");
      d_scores.ensure(out_len * 4, "cudaMalloc scores");
      d_ids.ensure(out_len * 4, "cudaMalloc ids");
      const size_t scratch = mnemo::pk_topk_scratch_floats(batch, heads, n, dk, k, device);
      if (scratch > 0) d_scratch.ensure(scratch * 4, "cudaMalloc half scores");
      cuda_ok(cudaMemcpy(d_q.ptr, q.data, q.length * 4, cudaMemcpyHostToDevice), "upload queries");
      cuda_ok(cudaMemcpy(d_keys.ptr, keys.data, keys.length * 4, cudaMemcpyHostToDevice),
              "upload subkeys");
      cuda_ok(mnemo::pk_topk(static_cast<const float*>(d_q.ptr), static_cast<const float*>(d_keys.ptr),
                             batch, heads, n, dk, k, static_cast<float*>(d_scores.ptr),
                             static_cast<int32_t*>(d_ids.ptr), static_cast<float*>(d_scratch.ptr),
                             device, nullptr),
              "pk_topk");
      cuda_ok(cudaMemcpy(host_scores, d_scores.ptr, out_len * 4, cudaMemcpyDeviceToHost),
              "download scores");
      cuda_ok(cudaMemcpy(host_ids, d_ids.ptr, out_len * 4, cudaMemcpyDeviceToHost), "download ids");
    } catch (...) {
      for (DeviceBuffer* b : {&d_q, &d_keys, &d_scores, &d_ids, &d_scratch}) b->release();
      throw;
    }
    for (DeviceBuffer* b : {&d_q, &d_keys, &d_scores, &d_ids, &d_scratch}) b->release();
    napi_value out;
    check_napi(env, napi_create_object(env, &out), "create_object");
    set_prop(env, out, "scores", scores);
    set_prop(env, out, "ids", ids);
    return out;
  });
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      {"deviceCount", nullptr, DeviceCount, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableCreate", nullptr, TableCreate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableUpload", nullptr, TableUpload, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableDownload", nullptr, TableDownload, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableFree", nullptr, TableFree, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableForward", nullptr, TableForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableBackwardStep", nullptr, TableBackwardStep, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableStateDownload", nullptr, TableStateDownload, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tableStateUpload", nullptr, TableStateUpload, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"pkTopK", nullptr, PkTopK, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}
