// N-API bindings of the Mnemo CPU kernels (node-addon-api, no C++ exceptions). Every function
// takes typed arrays and uses their memory in place; validation happens in TypeScript
// (src/embedding-bag.ts), so here we only check argument kinds.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <napi.h>

#include "dense.h"
#include "kernels.h"

namespace mnemo {
void register_fused_napi(Napi::Env env, Napi::Object exports);  // fused_napi.cc
}  // namespace mnemo

namespace {

using namespace mnemo;

// ---- argument helpers -----------------------------------------------------------------------

bool fail(const Napi::Env& env, const std::string& msg) {
  Napi::TypeError::New(env, "mnemo_cpu: " + msg).ThrowAsJavaScriptException();
  return false;
}

// Pointer to the first element of a typed array (nullptr when the argument is null).
template <class T>
bool typed(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type want, T** out, size_t* len,
           bool nullable = false) {
  const Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) {
    *out = nullptr;
    if (len) *len = 0;
    return true;
  }
  if (!v.IsTypedArray()) return fail(info.Env(), "argument " + std::to_string(i) + " must be a typed array");
  const Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != want) return fail(info.Env(), "argument " + std::to_string(i) + " has the wrong typed-array type");
  *out = reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  if (len) *len = ta.ElementLength();
  return true;
}

// Values: Float32Array (dtype 0) or Uint16Array (bf16/fp16).
bool values_arg(const Napi::CallbackInfo& info, size_t i, int dtype, void** out) {
  size_t len;
  if (dtype == kF32) {
    float* p;
    if (!typed(info, i, napi_float32_array, &p, &len)) return false;
    *out = p;
  } else {
    uint16_t* p;
    if (!typed(info, i, napi_uint16_array, &p, &len)) return false;
    *out = p;
  }
  return true;
}

// ---- kernels --------------------------------------------------------------------------------

// bagForward(values, dtype, dim, ids, weights, bagSize, out)
Napi::Value BagForward(const Napi::CallbackInfo& info) {
  const int dtype = info[1].As<Napi::Number>().Int32Value();
  const int dim = info[2].As<Napi::Number>().Int32Value();
  const int bag = info[5].As<Napi::Number>().Int32Value();
  void* values;
  int32_t* ids;
  float *w, *out;
  size_t n_ids, n_out;
  if (!values_arg(info, 0, dtype, &values) || !typed(info, 3, napi_int32_array, &ids, &n_ids) ||
      !typed(info, 4, napi_float32_array, &w, nullptr) || !typed(info, 6, napi_float32_array, &out, &n_out)) {
    return info.Env().Undefined();
  }
  if (bag <= 0 || dim <= 0) return info.Env().Undefined();
  bag_forward(values, dtype, dim, ids, w, static_cast<int64_t>(n_out / dim), bag, out);
  return info.Env().Undefined();
}

// bagBackward(values, dtype, dim, ids, weights, gOut, bagSize, gw|null, params|null,
//             accum|null, moments|null, steps|null, moments16|null, rowV|null) → touched rows
Napi::Value BagBackward(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int dtype = info[1].As<Napi::Number>().Int32Value();
  const int dim = info[2].As<Napi::Number>().Int32Value();
  const int bag = info[6].As<Napi::Number>().Int32Value();
  void* values;
  int32_t *ids, *steps;
  float *w, *g_out, *gw, *accum, *moments, *row_v = nullptr;
  uint16_t* moments16 = nullptr;
  double* params = nullptr;
  size_t n_ids = 0, n_params = 0;
  if (!values_arg(info, 0, dtype, &values) || !typed(info, 3, napi_int32_array, &ids, &n_ids) ||
      !typed(info, 4, napi_float32_array, &w, nullptr) || !typed(info, 5, napi_float32_array, &g_out, nullptr) ||
      !typed(info, 7, napi_float32_array, &gw, nullptr, true) ||
      !typed(info, 8, napi_float64_array, &params, &n_params, true) ||
      !typed(info, 9, napi_float32_array, &accum, nullptr, true) ||
      !typed(info, 10, napi_float32_array, &moments, nullptr, true) ||
      !typed(info, 11, napi_int32_array, &steps, nullptr, true) ||
      (info.Length() > 12 && !typed(info, 12, napi_uint16_array, &moments16, nullptr, true)) ||
      (info.Length() > 13 && !typed(info, 13, napi_float32_array, &row_v, nullptr, true))) {
    return env.Undefined();
  }
  if (bag <= 0 || n_ids == 0) return Napi::Number::New(env, 0);
  OptimizerParams opt{};
  if (params) {
    if (n_params < 8) return fail(env, "params must hold 8 values"), env.Undefined();
    opt = OptimizerParams{static_cast<int>(params[0]), static_cast<float>(params[1]), static_cast<float>(params[2]),
                          static_cast<float>(params[3]), static_cast<float>(params[4]), static_cast<float>(params[5]),
                          static_cast<int>(params[6]), static_cast<float>(params[7]),
                          n_params > 8 ? static_cast<int>(params[8]) : 0, n_params > 9 ? static_cast<int>(params[9]) : 0};
    const bool adam_ok = !steps ? false
                         : !opt.row_wise ? moments != nullptr
                                         : row_v != nullptr && (opt.moment_bf16 ? moments16 != nullptr : moments != nullptr);
    if ((opt.kind == kAdagrad && !accum) || (opt.kind == kAdam && !adam_ok)) {
      return fail(env, "optimizer state missing for this optimizer kind"), env.Undefined();
    }
  }
  const OptimizerState state{accum, moments, steps, moments16, row_v};
  const int64_t touched = bag_backward(values, dtype, dim, ids, w, g_out, static_cast<int64_t>(n_ids / bag), bag, gw,
                                       params ? &opt : nullptr, state);
  return Napi::Number::New(env, static_cast<double>(touched));
}

// rooflineGatherSum(values, dim, ids, bagSize, out, prefetch)
Napi::Value RooflineGatherSum(const Napi::CallbackInfo& info) {
  const int dim = info[1].As<Napi::Number>().Int32Value();
  const int bag = info[3].As<Napi::Number>().Int32Value();
  const bool prefetch = info[5].ToBoolean().Value();
  float *values, *out;
  int32_t* ids;
  size_t n_out;
  if (!typed(info, 0, napi_float32_array, &values, nullptr) || !typed(info, 2, napi_int32_array, &ids, nullptr) ||
      !typed(info, 4, napi_float32_array, &out, &n_out)) {
    return info.Env().Undefined();
  }
  if (bag > 0 && dim > 0) roofline_gather_sum(values, dim, ids, static_cast<int64_t>(n_out / dim), bag, out, prefetch);
  return info.Env().Undefined();
}

// pkTopK(queries, subkeys, batch, heads, n, dk, k, scores, ids)
Napi::Value PkTopK(const Napi::CallbackInfo& info) {
  float *q, *keys, *scores;
  int32_t* ids;
  if (!typed(info, 0, napi_float32_array, &q, nullptr) || !typed(info, 1, napi_float32_array, &keys, nullptr) ||
      !typed(info, 7, napi_float32_array, &scores, nullptr) || !typed(info, 8, napi_int32_array, &ids, nullptr)) {
    return info.Env().Undefined();
  }
  int d[5];
  for (int i = 0; i < 5; i++) d[i] = info[2 + i].As<Napi::Number>().Int32Value();
  pk_topk(q, keys, d[0], d[1], d[2], d[3], d[4], scores, ids);
  return info.Env().Undefined();
}

// pkBackward(grad, ids, queries, subkeys, batch, heads, n, dk, k, dq, dkeys)
Napi::Value PkBackward(const Napi::CallbackInfo& info) {
  float *g, *q, *keys, *dq, *dkeys;
  int32_t* ids;
  if (!typed(info, 0, napi_float32_array, &g, nullptr) || !typed(info, 1, napi_int32_array, &ids, nullptr) ||
      !typed(info, 2, napi_float32_array, &q, nullptr) || !typed(info, 3, napi_float32_array, &keys, nullptr) ||
      !typed(info, 9, napi_float32_array, &dq, nullptr) || !typed(info, 10, napi_float32_array, &dkeys, nullptr)) {
    return info.Env().Undefined();
  }
  int d[5];
  for (int i = 0; i < 5; i++) d[i] = info[4 + i].As<Napi::Number>().Int32Value();
  pk_backward(g, ids, q, keys, d[0], d[1], d[2], d[3], d[4], dq, dkeys);
  return info.Env().Undefined();
}

// firstBadId(ids, rows) → index of the first id outside [-1, rows), or -1
Napi::Value FirstBadId(const Napi::CallbackInfo& info) {
  int32_t* ids;
  size_t n = 0;
  if (!typed(info, 0, napi_int32_array, &ids, &n)) return info.Env().Undefined();
  const int64_t rows = info[1].As<Napi::Number>().Int64Value();
  return Napi::Number::New(info.Env(), static_cast<double>(first_bad_id(ids, static_cast<int64_t>(n), rows)));
}

// firstNonFinite(floats) → index of the first NaN/Inf, or -1
Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
  float* x;
  size_t n = 0;
  if (!typed(info, 0, napi_float32_array, &x, &n)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(first_non_finite(x, static_cast<int64_t>(n))));
}

Napi::Value Checksum(const Napi::CallbackInfo& info) {
  uint8_t* p = nullptr;
  size_t n = 0;
  if (!typed(info, 0, napi_uint8_array, &p, &n)) return info.Env().Undefined();
  const uint32_t seed = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), checksum_words(p, static_cast<int64_t>(n), seed));
}

// ---- native memory --------------------------------------------------------------------------
// Each block is an mmap (anonymous or of a file). release() detaches the ArrayBuffer and unmaps
// at once; the GC finalizer unmaps blocks never released. A registry keyed by the data pointer
// finds the block from its ArrayBuffer.

struct Block {
  void* base;     // mmap result
  size_t length;  // mmap length
  bool freed;
};

std::mutex g_mu;
std::unordered_map<void*, Block*> g_blocks;  // data pointer → block

void unmap(Block* b) {
  if (!b->freed) {
    munmap(b->base, b->length);
    b->freed = true;
  }
}

void finalize_block(Napi::Env, void* data, Block* b) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_blocks.find(data);
  if (it != g_blocks.end() && it->second == b) g_blocks.erase(it);
  unmap(b);
  delete b;
}

Napi::Value Wrap(Napi::Env env, void* base, size_t length, void* data, size_t bytes) {
  Block* b = new Block{base, length, false};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_blocks[data] = b;
  }
  return Napi::ArrayBuffer::New(env, data, bytes, finalize_block, b);
}

// allocBuffer(bytes, populate): zeroed, page aligned, huge pages requested; `populate` commits
// the pages now (resident memory then stays flat while training touches new rows).
Napi::Value AllocBuffer(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double req = info[0].As<Napi::Number>().DoubleValue();
  const bool populate = info.Length() > 1 && info[1].ToBoolean().Value();
  if (!(req > 0)) return fail(env, "allocBuffer: bytes must be > 0"), env.Undefined();
  const size_t bytes = static_cast<size_t>(req);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    Napi::Error::New(env, "mnemo_cpu: cannot allocate " + std::to_string(bytes) + " bytes: " + std::strerror(errno))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
#ifdef MADV_HUGEPAGE
  if (bytes >= (size_t{2} << 20)) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  if (populate) {  // touch one byte per page: the kernel commits (zeroed) pages, huge where it can
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    volatile char* c = static_cast<char*>(p);
    for (size_t o = 0; o < bytes; o += page) c[o] = 0;
  }
  return Wrap(env, p, bytes, p, bytes);
}

// mapFile(path, offset, length, shared)
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int64_t offset = info[1].As<Napi::Number>().Int64Value();
  const size_t length = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  const bool shared = info[3].ToBoolean().Value();
  if (length == 0) return fail(env, "mapFile: length must be > 0"), env.Undefined();
  const int fd = open(path.c_str(), shared ? O_RDWR : O_RDONLY);
  if (fd < 0) {
    Napi::Error::New(env, "mnemo_cpu: cannot open " + path + ": " + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t start = offset / page * page;
  const size_t delta = static_cast<size_t>(offset - start);
  void* p = mmap(nullptr, length + delta, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, start);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) {
    Napi::Error::New(env, "mnemo_cpu: cannot map " + path + ": " + std::strerror(err)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Wrap(env, p, length + delta, static_cast<char*>(p) + delta, length);
}

// release(arrayBuffer): detach now and unmap (no-op for buffers this addon did not create).
Napi::Value Release(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return fail(env, "release: argument must be an ArrayBuffer"), env.Undefined();
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  Block* b = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_blocks.find(data);
    if (it == g_blocks.end()) return env.Undefined();
    b = it->second;
    g_blocks.erase(it);
  }
  ab.Detach();
  unmap(b);  // the finalizer later only deletes the struct
  return env.Undefined();
}

// syncBuffer(arrayBuffer): msync a file mapping made by mapFile (no-op for other buffers).
Napi::Value SyncBuffer(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return fail(env, "syncBuffer: argument must be an ArrayBuffer"), env.Undefined();
  void* data = info[0].As<Napi::ArrayBuffer>().Data();
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_blocks.find(data);
  if (it != g_blocks.end() && !it->second->freed && msync(it->second->base, it->second->length, MS_SYNC) != 0) {
    Napi::Error::New(env, std::string("mnemo_cpu: msync failed: ") + std::strerror(errno)).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// rooflineRowRmw(arrays, rowCount, rows, mask): arrays = typed arrays of rowCount rows each (their
// row size = byteLength / rowCount, a multiple of 4 bytes); rows = sorted distinct row ids.
Napi::Value RooflineRowRmw(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsArray()) return fail(env, "rooflineRowRmw: argument 0 must be an array of typed arrays"), env.Undefined();
  const Napi::Array list = info[0].As<Napi::Array>();
  const double row_count = info[1].As<Napi::Number>().DoubleValue();
  int32_t* rows;
  size_t n_rows;
  if (!typed(info, 2, napi_int32_array, &rows, &n_rows)) return env.Undefined();
  const uint32_t mask = info[3].As<Napi::Number>().Uint32Value();
  std::vector<uint8_t*> arrays;
  std::vector<int64_t> row_bytes;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const Napi::Value v = list.Get(i);
    if (!v.IsTypedArray()) return fail(env, "rooflineRowRmw: arrays[" + std::to_string(i) + "] must be a typed array"), env.Undefined();
    const Napi::TypedArray ta = v.As<Napi::TypedArray>();
    const double bytes = static_cast<double>(ta.ByteLength()) / row_count;
    if (!(row_count >= 1) || bytes != static_cast<double>(static_cast<int64_t>(bytes)) || static_cast<int64_t>(bytes) % 4 != 0) {
      return fail(env, "rooflineRowRmw: arrays[" + std::to_string(i) + "] is not rowCount rows of whole 32-bit words"), env.Undefined();
    }
    arrays.push_back(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
    row_bytes.push_back(static_cast<int64_t>(bytes));
  }
  for (size_t u = 0; u < n_rows; u++) {
    if (rows[u] < 0 || rows[u] >= row_count) return fail(env, "rooflineRowRmw: rows[" + std::to_string(u) + "] is outside [0, rowCount)"), env.Undefined();
  }
  roofline_row_rmw(arrays.data(), row_bytes.data(), static_cast<int>(arrays.size()), rows, static_cast<int64_t>(n_rows), mask);
  return env.Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value SetPrefetch(const Napi::CallbackInfo& info) {
  set_prefetch(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}


// ---- dense math (dense.cc) ----------------------------------------------------------------------

// denseInfo() → { blas, blasName, blasReason, blasThreads }
Napi::Value DenseInfo(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", Napi::Boolean::New(env, blas_available()));
  o.Set("blasName", Napi::String::New(env, blas_name()));
  o.Set("blasReason", Napi::String::New(env, blas_reason()));
  o.Set("blasThreads", Napi::Number::New(env, blas_threads()));
  return o;
}

Napi::Value SetDenseThreads(const Napi::CallbackInfo& info) {
  set_dense_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// sgemm(heap: Float32Array, aOff, bOff, cOff, batch, aStride, bStride, m, n, k, transA, transB)
// offsets and strides in floats from heap[0]; the caller guarantees the ranges lie inside heap.
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  float* heap;
  size_t len;
  if (!typed(info, 0, napi_float32_array, &heap, &len)) return info.Env().Undefined();
  auto i64 = [&](size_t i) { return info[i].As<Napi::Number>().Int64Value(); };
  const int64_t a = i64(1), b = i64(2), c = i64(3), batch = i64(4), as = i64(5), bs = i64(6), m = i64(7),
                n = i64(8), k = i64(9);
  const bool ta = info[10].ToBoolean().Value(), tb = info[11].ToBoolean().Value();
  const int64_t n_len = static_cast<int64_t>(len);
  if (a < 0 || b < 0 || c < 0 || batch < 0 || m < 0 || n < 0 || k < 0 ||
      a + (batch - 1) * as + m * k > n_len || b + (batch - 1) * bs + k * n > n_len || c + batch * m * n > n_len) {
    return fail(info.Env(), "sgemm: operand range outside the heap"), info.Env().Undefined();
  }
  if (!blas_available()) return fail(info.Env(), "sgemm: no BLAS loaded (" + blas_reason() + ")"), info.Env().Undefined();
  if (batch == 0 || m == 0 || n == 0) return info.Env().Undefined();
  sgemm_batched(heap + a, heap + b, heap + c, batch, as, bs, m, n, k, ta, tb);
  return info.Env().Undefined();
}

// denseAdamW(heap: Float32Array, xOff, mOff, vOff, gOff, xoOff, moOff, voOff, n,
//            params: Float64Array [scale, beta1, beta2, eps, step, invBc2, decay])
// offsets in floats from heap[0]; each range [off, off + n) must lie inside the heap.
Napi::Value DenseAdamW(const Napi::CallbackInfo& info) {
  float* heap;
  size_t len;
  double* p;
  size_t plen;
  if (!typed(info, 0, napi_float32_array, &heap, &len)) return info.Env().Undefined();
  if (!typed(info, 9, napi_float64_array, &p, &plen)) return info.Env().Undefined();
  if (plen < 7) return fail(info.Env(), "denseAdamW: params needs 7 numbers"), info.Env().Undefined();
  const int64_t n = info[8].As<Napi::Number>().Int64Value();
  int64_t off[7];
  for (int i = 0; i < 7; i++) {
    off[i] = info[1 + i].As<Napi::Number>().Int64Value();
    if (n < 0 || off[i] < 0 || off[i] + n > static_cast<int64_t>(len)) {
      return fail(info.Env(), "denseAdamW: operand range outside the heap"), info.Env().Undefined();
    }
  }
  const DenseAdamParams q{static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2]),
                          static_cast<float>(p[3]), static_cast<float>(p[4]), static_cast<float>(p[5]),
                          static_cast<float>(p[6])};
  dense_adamw(heap + off[0], heap + off[1], heap + off[2], heap + off[3], heap + off[4], heap + off[5], heap + off[6], n, q);
  return info.Env().Undefined();
}

// sumSquares(heap: Float32Array, off, n) → Σ heap[off + i]²
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  float* heap;
  size_t len;
  if (!typed(info, 0, napi_float32_array, &heap, &len)) return info.Env().Undefined();
  const int64_t off = info[1].As<Napi::Number>().Int64Value(), n = info[2].As<Napi::Number>().Int64Value();
  if (off < 0 || n < 0 || off + n > static_cast<int64_t>(len)) {
    return fail(info.Env(), "sumSquares: range outside the heap"), info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), sum_squares(heap + off, n));
}

// binaryF32(heap: Float32Array, op 0 add | 1 sub | 2 mul, offA, offB, offOut, n, pa, pb)
Napi::Value BinaryF32(const Napi::CallbackInfo& info) {
  float* heap;
  size_t len;
  if (!typed(info, 0, napi_float32_array, &heap, &len)) return info.Env().Undefined();
  const int op = info[1].As<Napi::Number>().Int32Value();
  int64_t v[6];
  for (int i = 0; i < 6; i++) v[i] = info[2 + i].As<Napi::Number>().Int64Value();
  const int64_t n = v[3], pa = v[4], pb = v[5];
  const auto in_heap = [&](int64_t off, int64_t count) { return off >= 0 && count >= 0 && off + count <= static_cast<int64_t>(len); };
  if (op < 0 || op > 2) return fail(info.Env(), "binaryF32: op must be 0 (add), 1 (sub) or 2 (mul)"), info.Env().Undefined();
  const int64_t p = pa < pb ? pa : pb, q = pa < pb ? pb : pa;
  if (n < 0 || q != n || p < 1 || (n > 0 && n % p != 0)) {
    return fail(info.Env(), "binaryF32: periods must be n, a divisor of n, or 1"), info.Env().Undefined();
  }
  if (!in_heap(v[0], pa) || !in_heap(v[1], pb) || !in_heap(v[2], n)) {
    return fail(info.Env(), "binaryF32: operand range outside the heap"), info.Env().Undefined();
  }
  binary_f32(op, heap + v[0], heap + v[1], heap + v[2], n, pa, pb);
  return info.Env().Undefined();
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  const int threads = info[0].As<Napi::Number>().Int32Value();
  const double seconds = info[1].As<Napi::Number>().DoubleValue();
  return Napi::Number::New(info.Env(), fma_peak_gflops(threads, seconds));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const bool avx2 = false;
#endif
  exports.Set("simd", Napi::String::New(env, avx2 ? "avx2" : "generic"));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setPrefetch", Napi::Function::New(env, SetPrefetch));
  exports.Set("bagForward", Napi::Function::New(env, BagForward));
  exports.Set("bagBackward", Napi::Function::New(env, BagBackward));
  exports.Set("rooflineGatherSum", Napi::Function::New(env, RooflineGatherSum));
  exports.Set("rooflineRowRmw", Napi::Function::New(env, RooflineRowRmw));
  exports.Set("pkTopK", Napi::Function::New(env, PkTopK));
  exports.Set("pkBackward", Napi::Function::New(env, PkBackward));
  exports.Set("checksum", Napi::Function::New(env, Checksum));
  exports.Set("denseInfo", Napi::Function::New(env, DenseInfo));
  exports.Set("setDenseThreads", Napi::Function::New(env, SetDenseThreads));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  exports.Set("fmaPeakIsa", Napi::String::New(env, fma_peak_avx512() ? "avx512" : "avx2"));
  exports.Set("denseAdamW", Napi::Function::New(env, DenseAdamW));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("binaryF32", Napi::Function::New(env, BinaryF32));
  register_fused_napi(env, exports);
  exports.Set("firstBadId", Napi::Function::New(env, FirstBadId));
  exports.Set("firstNonFinite", Napi::Function::New(env, FirstNonFinite));
  exports.Set("allocBuffer", Napi::Function::New(env, AllocBuffer));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("syncBuffer", Napi::Function::New(env, SyncBuffer));
  return exports;
}

}  // namespace

NODE_API_MODULE(mnemo_cpu, Init)
