// Dense math for the tfjs wasm backend: SGEMM on the wasm heap in place.
//
// The GEMM is OpenBLAS's (or any CBLAS with `cblas_sgemm`), LOADED AT RUNTIME with dlopen: the
// addon builds and runs on machines without it (then the TypeScript side keeps the wasm kernel).
// Library: MNEMO_BLAS_LIB, else libopenblas.so.0, libopenblas.so, libblis.so.4; MNEMO_BLAS=0
// skips it. A hand-written blocked AVX2 SGEMM (6x16 micro-kernel, packed panels) was measured
// and dropped: 3-28 GFLOP/s on the model's shapes, no better than wasm's XNNPACK (~25), while
// OpenBLAS runs the same shapes at 45-80 (docs/benchmarks/throughput.md).
// Plus a tight FMA loop that measures the machine's peak (GFLOP/s).
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common.h"
#include "dense.h"

namespace mnemo {
namespace {

// ---- runtime-loaded CBLAS -----------------------------------------------------------------------

enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
using GetConfigFn = char* (*)();

struct Blas {
  bool tried = false;
  SgemmFn sgemm = nullptr;
  SetThreadsFn set_threads = nullptr;
  GetThreadsFn get_threads = nullptr;
  std::string name;
  std::string reason;
  int threads = 1;  // threads for large products (OpenBLAS's default: OPENBLAS_NUM_THREADS or cores)
  int current = 0;  // the thread count OpenBLAS was last set to (0: not set by us)
};
Blas blas;

void load_blas() {
  if (blas.tried) return;
  blas.tried = true;
  const char* off = std::getenv("MNEMO_BLAS");
  if (off && std::string(off) == "0") {
    blas.reason = "disabled by MNEMO_BLAS=0";
    return;
  }
  std::vector<std::string> libs;
  if (const char* lib = std::getenv("MNEMO_BLAS_LIB")) libs.emplace_back(lib);
  else libs = {"libopenblas.so.0", "libopenblas.so", "libblis.so.4"};
  std::string errors;
  for (const auto& lib : libs) {
    void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      errors += (errors.empty() ? "" : "; ") + std::string(e ? e : lib.c_str());
      continue;
    }
    auto fn = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
    if (!fn) {
      errors += (errors.empty() ? "" : "; ") + lib + ": no cblas_sgemm";
      dlclose(h);
      continue;
    }
    blas.sgemm = fn;
    blas.set_threads = reinterpret_cast<SetThreadsFn>(dlsym(h, "openblas_set_num_threads"));
    blas.get_threads = reinterpret_cast<GetThreadsFn>(dlsym(h, "openblas_get_num_threads"));
    auto cfg = reinterpret_cast<GetConfigFn>(dlsym(h, "openblas_get_config"));
    blas.name = lib + (cfg ? std::string(" (") + cfg() + ")" : std::string());
    blas.threads = blas.get_threads ? std::max(1, blas.get_threads()) : 1;
    return;
  }
  blas.reason = errors;
}

}  // namespace

bool blas_available() {
  load_blas();
  return blas.sgemm != nullptr;
}

std::string blas_name() {
  load_blas();
  return blas.name;
}

std::string blas_reason() {
  load_blas();
  return blas.reason;
}

int blas_threads() {
  load_blas();
  return blas.sgemm ? blas.threads : -1;
}

void set_dense_threads(int n) {
  load_blas();
  if (n > 0) blas.threads = n;
}

namespace {
// OpenBLAS splits even skinny products (decode: m = 8 rows) over its threads, and waking the
// second thread costs more than it saves: measured [8,128]·[128,1024] 512 µs on 2 threads vs
// 135 µs on 1 (wasm 102-201 µs), [8,2048]·[2048,512] 3.0 ms vs 0.83 ms. Products under 4M
// multiply-adds or with fewer than 32 rows or columns run on one thread.
void use_threads(int64_t m, int64_t n, int64_t k) {
  if (!blas.set_threads) return;
  const int want = (m * n * k < (int64_t{1} << 22) || std::min(m, n) < 32) ? 1 : blas.threads;
  if (want != blas.current) {
    blas.set_threads(want);
    blas.current = want;
  }
}
}  // namespace

void sgemm_batched(const float* a, const float* b, float* c, int64_t batch, int64_t a_stride,
                   int64_t b_stride, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) {
  const int64_t c_stride = m * n;
  if (!blas_available()) return;
  const int lda = static_cast<int>(trans_a ? m : k), ldb = static_cast<int>(trans_b ? k : n);
  // columns [j0, j0 + cols) of product i: op(a[i]) · op(b[i])[:, j0:] into c[i][:, j0:] (row stride n)
  auto gemm = [&](int64_t i, int64_t j0, int64_t cols) {
    const float* bi = b + i * b_stride;
    blas.sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, static_cast<int>(m),
               static_cast<int>(cols), static_cast<int>(k), 1.f, a + i * a_stride, lda, trans_b ? bi + j0 * k : bi + j0,
               ldb, 0.f, c + i * c_stride + j0, static_cast<int>(n));
  };
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      if (k == 0) std::fill(c + i * c_stride, c + (i + 1) * c_stride, 0.f);
      else gemm(i, 0, n);
    }
  };
  // Many small products (attention's [B·H] × [T, d_h]·[d_h, T]): one OpenBLAS thread per product
  // and the batch split over the cores. Threading each 4M-MAC product inside OpenBLAS ran at
  // ~55 GFLOP/s on 2 cores, where the same products ran ~2x faster split by batch.
  const int64_t macs = m * n * k;
  if (batch >= 2 && blas.threads > 1 && macs < (int64_t{1} << 24) && batch * macs >= (int64_t{1} << 22)) {
    use_threads(1, 1, 1);  // one thread inside each product
    parallel_for(batch, blas.threads, [&](int, int64_t begin, int64_t end) { run(begin, end); });
    return;
  }
  // Skinny products (decode: m = 8 sequences) stream the whole weight matrix for a few rows, and
  // OpenBLAS runs them on one thread (its own split lost to the wake-up, above). Split the columns
  // of op(B) and C over the cores instead, one OpenBLAS thread per slice: each thread streams its
  // share of the weights. Measured on 2 cores, split vs one thread: [8,512]·[512,2048] 0.50 vs
  // 0.84-1.08 ms, [1,512]·[512,2048] 0.28 vs 0.67-0.75, [8,512]·[512,1024]ᵀ 0.31 vs 0.46; but
  // [8,512]·[512,256] 0.071-0.079 vs 0.062-0.067 (a thread's start costs more): n ≥ 512.
  if (m < 32 && blas.threads > 1 && k > 0 && n >= 512 && macs >= (int64_t{1} << 20)) {
    use_threads(1, 1, 1);
    const int threads = static_cast<int>(std::min<int64_t>(blas.threads, n / 64));
    for (int64_t i = 0; i < batch; i++) {
      parallel_for(threads, threads, [&](int t, int64_t, int64_t) {
        // columns [j0, j1), cut at multiples of 16 (whole SIMD vectors)
        const int64_t j0 = (n * t / threads) & ~int64_t{15}, j1 = t + 1 == threads ? n : (n * (t + 1) / threads) & ~int64_t{15};
        if (j1 > j0) gemm(i, j0, j1 - j0);
      });
    }
    return;
  }
  use_threads(m, n, k);
  run(0, batch);
}

#if defined(__x86_64__) && defined(__GNUC__)
// `iters` x 12 independent vfmadd231ps on registers 0-11 (more chains than FMA latency x ports), in
// asm so the compiler neither spills the chains nor folds the loop. R is the register file: "ymm"
// (AVX2, 8 floats) or "zmm" (AVX-512F, 16 floats: OpenBLAS's SkylakeX kernels use them, so the
// AVX2 loop alone understates an AVX-512 machine's peak by up to 2x).
#define MNEMO_REG(R, i) "%%" R #i
#define MNEMO_MOV(R, i) "vmovaps " MNEMO_REG(R, 12) ", " MNEMO_REG(R, i) "\n\t"
#define MNEMO_FMA(R, i) "vfmadd231ps " MNEMO_REG(R, 12) ", " MNEMO_REG(R, 13) ", " MNEMO_REG(R, i) "\n\t"
#define MNEMO_FMA_LOOP(R)                                                                                       \
  "vbroadcastss %1, " MNEMO_REG(R, 12) "\n\t"                                                                    \
  "vxorps " MNEMO_REG(R, 13) ", " MNEMO_REG(R, 13) ", " MNEMO_REG(R, 13) "\n\t"                                  \
  MNEMO_MOV(R, 0) MNEMO_MOV(R, 1) MNEMO_MOV(R, 2) MNEMO_MOV(R, 3) MNEMO_MOV(R, 4) MNEMO_MOV(R, 5) MNEMO_MOV(R, 6) \
  MNEMO_MOV(R, 7) MNEMO_MOV(R, 8) MNEMO_MOV(R, 9) MNEMO_MOV(R, 10) MNEMO_MOV(R, 11)                              \
  "1:\n\t"                                                                                                       \
  MNEMO_FMA(R, 0) MNEMO_FMA(R, 1) MNEMO_FMA(R, 2) MNEMO_FMA(R, 3) MNEMO_FMA(R, 4) MNEMO_FMA(R, 5) MNEMO_FMA(R, 6) \
  MNEMO_FMA(R, 7) MNEMO_FMA(R, 8) MNEMO_FMA(R, 9) MNEMO_FMA(R, 10) MNEMO_FMA(R, 11)                              \
  "dec %0\n\t"                                                                                                   \
  "jnz 1b\n\t"                                                                                                   \
  "vaddps " MNEMO_REG(R, 0) ", " MNEMO_REG(R, 11) ", " MNEMO_REG(R, 0) "\n\t"                                    \
  "vmovups " MNEMO_REG(R, 0) ", %2\n\t"                                                                          \
  "vzeroupper\n\t"
#define MNEMO_FMA_CLOBBERS \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "memory", "cc"

__attribute__((target("avx2,fma"), noinline)) static double fma_loop(int64_t iters) {
  alignas(32) float o[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  __asm__ volatile(MNEMO_FMA_LOOP("ymm") : "+r"(iters) : "m"(o[0]), "m"(o[0]) : MNEMO_FMA_CLOBBERS);
  return o[0];
}

__attribute__((target("avx512f"), noinline)) static double fma_loop512(int64_t iters) {
  alignas(64) float o[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  __asm__ volatile(MNEMO_FMA_LOOP("zmm") : "+r"(iters) : "m"(o[0]), "m"(o[0]) : MNEMO_FMA_CLOBBERS);
  return o[0];
}
#endif

bool fma_peak_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

double fma_peak_gflops(int threads, double seconds) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (!__builtin_cpu_supports("fma")) return 0;
  const bool wide = fma_peak_avx512();
  const int64_t iters = 1 << 22;  // 12 chains x (16 or 8) lanes x 2 flops each
  const double flops_per_iter = wide ? 384.0 : 192.0;
  std::atomic<double> total{0};
  parallel_for(threads, threads, [&](int, int64_t, int64_t) {
    double sink = 0;
    int64_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double el = 0;
    do {
      sink += wide ? fma_loop512(iters) : fma_loop(iters);
      n += iters;
      el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (el < seconds);
    double flops = static_cast<double>(n) * flops_per_iter / el / 1e9 + (sink == 12345.0 ? 1 : 0);
    double cur = total.load();
    while (!total.compare_exchange_weak(cur, cur + flops)) {
    }
  });
  return total.load();
#else
  (void)threads;
  (void)seconds;
  return 0;
#endif
}

}  // namespace mnemo
