// Batch normalisation with frozen statistics (Matterport's TRAIN_BN = False: the cpu profile's whole network) and
// the ReLU after it, for the wasm backend (kernels/native/batch-norm-frozen.ts registers the kernels): the forward
// pass in one pass over the activation, the gradient in one more, where tfjs-wasm runs ~14 kernels (a sub, a tile,
// five multiplies over the whole activation, the rsqrt chain, two sums, the ReLU's step, cast and multiply).
//
// Over the last axis (C channels, M = size / C rows), with r = 1 / sqrt(var + eps) and s = gamma * r:
//   z = (x - mean) * s + beta,   y = relu ? max(z, 0) : z
//   dz = relu ? (z > 0 ? dy : 0) : dy        (z recomputed as the forward computed it; NaN passes through)
//   dx = dz * s,   dgamma = sum over rows of dz * (x - mean) * r,   dbeta = sum over rows of dz
// Rows are shared among `team` OpenMP threads in blocks that depend on the shape only; each block sums its
// channels in double, and the blocks' sums are added in block order, so one thread and two give the same values.
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/** Up to this many row blocks per call; none under MIN_BLOCK_ELEMENTS, and one thread below MIN_PARALLEL_ELEMENTS. */
#define BLOCKS 8
#define MIN_BLOCK_ELEMENTS 16384
#define MIN_PARALLEL_ELEMENTS 65536

static int team = 1;

static int64_t block_rows(int64_t m, int64_t c) {
  int64_t rows = (m + BLOCKS - 1) / BLOCKS, least = (MIN_BLOCK_ELEMENTS + c - 1) / c;
  return rows > least ? rows : least;
}

static int threads_for(int64_t blocks, int64_t elements) {
  if (blocks < 2 || elements < MIN_PARALLEL_ELEMENTS) return 1;
  return (int)(team < blocks ? team : blocks);
}

/** r and s per channel, as float32 as the rest. */
static void factors(int64_t c, const float *variance, const float *gamma, double eps, float *r, float *s) {
  for (int64_t ch = 0; ch < c; ch++) {
    r[ch] = 1.0f / sqrtf(variance[ch] + (float)eps);
    s[ch] = gamma[ch] * r[ch];
  }
}

static void forward(int64_t m, int64_t c, const float *x, const float *mean, const float *variance, const float *gamma, const float *beta,
                    double eps, int relu, float *y, float *r, float *s) {
  factors(c, variance, gamma, eps, r, s);
  const int64_t step = block_rows(m, c), blocks = (m + step - 1) / step;
#pragma omp parallel for num_threads(threads_for(blocks, m * c)) schedule(dynamic, 1)
  for (int64_t block = 0; block < blocks; block++) {
    const int64_t end = (block + 1) * step < m ? (block + 1) * step : m;
    for (int64_t row = block * step; row < end; row++) {
      const float *xr = x + row * c;
      float *yr = y + row * c;
      for (int64_t ch = 0; ch < c; ch++) yr[ch] = (xr[ch] - mean[ch]) * s[ch] + beta[ch];
      if (relu) for (int64_t ch = 0; ch < c; ch++) yr[ch] = yr[ch] < 0.0f ? 0.0f : yr[ch]; // branch-free: the signs are random
    }
  }
}

/** 0, or -1 when the partial sums could not be allocated. */
static int backward(int64_t m, int64_t c, const float *dy, const float *x, const float *mean, const float *variance, const float *gamma,
                    const float *beta, double eps, int relu, float *dx, float *dgamma, float *dbeta, float *r, float *s) {
  factors(c, variance, gamma, eps, r, s);
  const int64_t step = block_rows(m, c), blocks = (m + step - 1) / step;
  double *sums = calloc((size_t)(blocks * 2 * c), sizeof(double)); // per block: dgamma's, then dbeta's
  if (!sums) return -1;
#pragma omp parallel for num_threads(threads_for(blocks, m * c)) schedule(dynamic, 1)
  for (int64_t block = 0; block < blocks; block++) {
    double *sg = sums + block * 2 * c, *sb = sg + c;
    const int64_t end = (block + 1) * step < m ? (block + 1) * step : m;
    for (int64_t row = block * step; row < end; row++) {
      const float *dyr = dy + row * c, *xr = x + row * c;
      float *dxr = dx + row * c;
      // dz first (into dx), then the sums and dx: each loop simple enough to vectorise.
      for (int64_t ch = 0; ch < c; ch++) dxr[ch] = dyr[ch];
      if (relu) {
        for (int64_t ch = 0; ch < c; ch++) {
          const float z = (xr[ch] - mean[ch]) * s[ch] + beta[ch];
          dxr[ch] = z > 0.0f ? dxr[ch] : 0.0f;
          dxr[ch] = z != z ? z : dxr[ch];
        }
      }
      for (int64_t ch = 0; ch < c; ch++) {
        const float dz = dxr[ch];
        sg[ch] += (double)(dz * (xr[ch] - mean[ch]) * r[ch]);
        sb[ch] += (double)dz;
        dxr[ch] = dz * s[ch];
      }
    }
  }
  for (int64_t ch = 0; ch < c; ch++) {
    double g = 0.0, b = 0.0;
    for (int64_t block = 0; block < blocks; block++) {
      g += sums[block * 2 * c + ch];
      b += sums[block * 2 * c + c + ch];
    }
    dgamma[ch] = (float)g;
    dbeta[ch] = (float)b;
  }
  free(sums);
  return 0;
}

// ---- N-API glue ----

/** The heap (argv[0]) and `count` element offsets/sizes after it, each checked; NULL after throwing. */
static float *heap_and_integers(napi_env env, napi_value *argv, size_t count, int64_t *out, size_t *length) {
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[0], &type, length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "batch-norm-frozen: argument 0 must be a Float32Array over the wasm heap");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[i + 1], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "batch-norm-frozen: sizes and offsets must be integers");
      return NULL;
    }
  }
  return data;
}

/** Whether [offset, offset + size) lies in the heap. */
static int in_heap(int64_t offset, int64_t size, size_t length) {
  return offset >= 0 && size >= 0 && (uint64_t)(offset + size) <= (uint64_t)length;
}

/** forward(heap, m, c, x, mean, variance, gamma, beta, y, eps, relu) */
static napi_value Forward(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  size_t argc = 11, length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t a[8];
  double eps;
  bool relu;
  if (argc != 11) {
    napi_throw_type_error(env, NULL, "batch-norm-frozen: forward takes the heap and 10 arguments");
    return NULL;
  }
  float *heap = heap_and_integers(env, argv, 8, a, &length);
  if (!heap) return NULL;
  napi_get_value_double(env, argv[9], &eps);
  napi_get_value_bool(env, argv[10], &relu);
  const int64_t m = a[0], c = a[1];
  if (c <= 0 || !in_heap(a[2], m * c, length) || !in_heap(a[7], m * c, length) || !in_heap(a[3], c, length) || !in_heap(a[4], c, length) ||
      !in_heap(a[5], c, length) || !in_heap(a[6], c, length)) {
    napi_throw_range_error(env, NULL, "batch-norm-frozen: an operand lies outside the heap");
    return NULL;
  }
  float *factors_buffer = malloc((size_t)(2 * c) * sizeof(float));
  if (!factors_buffer) {
    napi_throw_error(env, NULL, "batch-norm-frozen: out of memory");
    return NULL;
  }
  forward(m, c, heap + a[2], heap + a[3], heap + a[4], heap + a[5], heap + a[6], eps, relu, heap + a[7], factors_buffer, factors_buffer + c);
  free(factors_buffer);
  return NULL;
}

/** backward(heap, m, c, dy, x, mean, variance, gamma, beta, dx, dgamma, dbeta, eps, relu) */
static napi_value Backward(napi_env env, napi_callback_info info) {
  napi_value argv[14];
  size_t argc = 14, length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t a[11];
  double eps;
  bool relu;
  if (argc != 14) {
    napi_throw_type_error(env, NULL, "batch-norm-frozen: backward takes the heap and 13 arguments");
    return NULL;
  }
  float *heap = heap_and_integers(env, argv, 11, a, &length);
  if (!heap) return NULL;
  napi_get_value_double(env, argv[12], &eps);
  napi_get_value_bool(env, argv[13], &relu);
  const int64_t m = a[0], c = a[1];
  int ok = c > 0 && in_heap(a[2], m * c, length) && in_heap(a[3], m * c, length) && in_heap(a[8], m * c, length);
  for (int i = 4; i < 8; i++) ok = ok && in_heap(a[i], c, length);
  ok = ok && in_heap(a[9], c, length) && in_heap(a[10], c, length);
  if (!ok) {
    napi_throw_range_error(env, NULL, "batch-norm-frozen: an operand lies outside the heap");
    return NULL;
  }
  float *factors_buffer = malloc((size_t)(2 * c) * sizeof(float));
  if (!factors_buffer || backward(m, c, heap + a[2], heap + a[3], heap + a[4], heap + a[5], heap + a[6], heap + a[7], eps, relu, heap + a[8],
                                  heap + a[9], heap + a[10], factors_buffer, factors_buffer + c) != 0) {
    free(factors_buffer);
    napi_throw_error(env, NULL, "batch-norm-frozen: out of memory");
    return NULL;
  }
  free(factors_buffer);
  return NULL;
}

/** setThreads(n): the threads the rows are shared among. */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  int32_t n = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_type_error(env, NULL, "batch-norm-frozen: setThreads needs a positive integer");
    return NULL;
  }
  team = n;
  return NULL;
}

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
    {"forward", NULL, Forward, NULL, NULL, NULL, napi_default, NULL},
    {"backward", NULL, Backward, NULL, NULL, NULL, napi_default, NULL},
    {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
