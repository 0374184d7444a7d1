/*
 * mnemo_mpi: the N-API addon behind the `mpi` ProcessGroup (src/mpi-group.ts).
 *
 * Every collective is NONBLOCKING MPI (MPI_Iallgather, …) polled with MPI_Test until it completes
 * or the caller's deadline passes: then it returns 1 (timed out) and the request is left pending,
 * the group is broken, and the JS side throws a BackendError and aborts the job at exit. Buffers
 * are the callers' typed arrays (contiguous bytes); reductions are float32 sums.
 *
 *   init() → [rank, size]          MPI_Init_thread (FUNNELED: only the JS thread calls MPI)
 *   coll(kind, send, recv, a, b, root, timeoutMs) → 0 ok | 1 timeout
 *     kind 0 allgather      send [n] bytes → recv [P·n]
 *     kind 1 allgatherv     a = recvcounts [P] int32 (bytes), b = displs [P]
 *     kind 2 alltoall       send [P·m] bytes → recv [P·m]
 *     kind 3 alltoallv      a = [sendcounts P, sdispls P], b = [recvcounts P, rdispls P] (bytes)
 *     kind 4 reduce_scatter_block   float32 sum, recv [m] from send [P·m]
 *     kind 5 allreduce      float32 sum
 *     kind 6 bcast          send = recv = buffer of root's length
 *     kind 7 barrier
 *   abort(code)   MPI_Abort(MPI_COMM_WORLD)
 *   finalize()
 */
#include <mpi.h>
#include <node_api.h>
#include <stdint.h>
#include <time.h>

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) {                                                                                           \
      napi_throw_error(env, NULL, "mnemo_mpi: N-API call failed: " #call);                                              \
      return NULL;                                                                                                     \
    }                                                                                                                  \
  } while (0)

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int bytes_of(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    *data = NULL;
    *len = 0;
    return 0;
  }
  napi_typedarray_type t;
  size_t n, off;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok) return -1;
  size_t el = (t == napi_int8_array || t == napi_uint8_array || t == napi_uint8_clamped_array) ? 1 : 4;
  *len = n * el;
  return 0;
}

static napi_value ret_int(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value Init(napi_env env, napi_callback_info info) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      napi_throw_error(env, NULL, "MPI_Init_thread failed");
      return NULL;
    }
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, ret_int(env, rank));
  napi_set_element(env, arr, 1, ret_int(env, size));
  return arr;
}

static napi_value Coll(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int kind, root;
  double timeout;
  CHECK(napi_get_value_int32(env, argv[0], &kind));
  CHECK(napi_get_value_int32(env, argv[5], &root));
  CHECK(napi_get_value_double(env, argv[6], &timeout));
  void *send, *recv, *a, *b;
  size_t sendLen, recvLen, aLen, bLen;
  if (bytes_of(env, argv[1], &send, &sendLen) || bytes_of(env, argv[2], &recv, &recvLen) || bytes_of(env, argv[3], &a, &aLen) ||
      bytes_of(env, argv[4], &b, &bLen)) {
    napi_throw_error(env, NULL, "mnemo_mpi: arguments must be typed arrays");
    return NULL;
  }
  int P;
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  int *ia = (int *)a, *ib = (int *)b;
  MPI_Request req;
  int rc;
  static char dummy[8];
  if (!send) send = dummy;
  if (!recv) recv = dummy;
  switch (kind) {
  case 0:
    rc = MPI_Iallgather(send, (int)sendLen, MPI_BYTE, recv, (int)sendLen, MPI_BYTE, MPI_COMM_WORLD, &req);
    break;
  case 1:
    rc = MPI_Iallgatherv(send, (int)sendLen, MPI_BYTE, recv, ia, ib, MPI_BYTE, MPI_COMM_WORLD, &req);
    break;
  case 2:
    rc = MPI_Ialltoall(send, (int)(sendLen / P), MPI_BYTE, recv, (int)(recvLen / P), MPI_BYTE, MPI_COMM_WORLD, &req);
    break;
  case 3:
    rc = MPI_Ialltoallv(send, ia, ia + P, MPI_BYTE, recv, ib, ib + P, MPI_BYTE, MPI_COMM_WORLD, &req);
    break;
  case 4:
    rc = MPI_Ireduce_scatter_block(send, recv, (int)(recvLen / 4), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    break;
  case 5:
    rc = MPI_Iallreduce(send, recv, (int)(recvLen / 4), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    break;
  case 6:
    rc = MPI_Ibcast(recv, (int)recvLen, MPI_BYTE, root, MPI_COMM_WORLD, &req);
    break;
  case 7:
    rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    break;
  default:
    napi_throw_error(env, NULL, "mnemo_mpi: unknown collective");
    return NULL;
  }
  if (rc != MPI_SUCCESS) {
    napi_throw_error(env, NULL, "mnemo_mpi: the MPI call failed to start");
    return NULL;
  }
  double deadline = now_ms() + timeout;
  int done = 0;
  long spins = 0;
  struct timespec nap = {0, 20000}; /* 20 µs between polls once the fast spins are spent */
  for (;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return ret_int(env, 0);
    if (++spins > 2000) {
      if (now_ms() > deadline) return ret_int(env, 1);
      nanosleep(&nap, NULL);
    }
  }
}

static napi_value Abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int code = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc > 0) napi_get_value_int32(env, argv[0], &code);
  MPI_Abort(MPI_COMM_WORLD, code);
  return NULL;
}

static napi_value Finalize(napi_env env, napi_callback_info info) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
  return NULL;
}

static napi_value Module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, Init, NULL, NULL, NULL, napi_default, NULL},
      {"coll", NULL, Coll, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, Abort, NULL, NULL, NULL, napi_default, NULL},
      {"finalize", NULL, Finalize, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 4, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Module)
