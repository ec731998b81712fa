// Convolutions and matrix products for the tfjs wasm backend, run natively on the system OpenBLAS
// (kernels/native/blas-kernels.ts loads it; kernels/native/wasm-blas-kernels.ts calls it).
//
// Every function reads its operands from, and writes its result into, the wasm heap: a Float32Array over the
// whole wasm memory (a SharedArrayBuffer when XNNPACK runs threads), addressed by element offsets. NHWC tensors,
// filters [kh, kw, Ci, Co]; the caller has checked every shape and offset against the heap.
//
// Convolutions are im2col + sgemm, in chunks of output pixels so the column buffer stays a few MiB:
//   forward        y[M, Co]  = cols[M, K] W[K, Co]           (+ bias, relu)
//   input grad     cols[M, K] = dy[M, Co] W^T                 then col2im adds cols into dx
//   filter grad    dW[K, Co] += cols^T dy[M, Co]              over the chunks
// with M = B*Ho*Wo and K = kh*kw*Ci in (i, j, ci) order: the filter's own memory order. A 1x1 conv with stride 1
// and no padding needs no columns: x itself is [M, Ci].
#include <cblas.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (8u << 20)

typedef struct {
  int64_t b, h, w, ci, kh, kw, co, sh, sw, dh, dw, top, left, ho, wo;
} Geometry;

static int is_pointwise(const Geometry *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->top == 0 && g->left == 0 && g->ho == g->h && g->wo == g->w;
}

/** Output pixels per chunk: enough rows for sgemm to be efficient, few enough that the columns fit CHUNK_BYTES. */
static int64_t chunk_rows(const Geometry *g) {
  int64_t k = g->kh * g->kw * g->ci;
  int64_t rows = (int64_t)CHUNK_BYTES / (int64_t)sizeof(float) / (k > 0 ? k : 1);
  return rows < 64 ? 64 : rows;
}

/** Columns of output pixels [m0, m0 + rows): each row the kh*kw*Ci input values its pixel reads (0 outside). */
static void im2col(const Geometry *g, const float *x, int64_t m0, int64_t rows, float *cols) {
  const int64_t k = g->kh * g->kw * g->ci;
  for (int64_t r = 0; r < rows; r++) {
    int64_t m = m0 + r;
    int64_t ox = m % g->wo, oy = (m / g->wo) % g->ho, n = m / (g->wo * g->ho);
    float *row = cols + r * k;
    for (int64_t i = 0; i < g->kh; i++) {
      int64_t y = oy * g->sh - g->top + i * g->dh;
      for (int64_t j = 0; j < g->kw; j++) {
        int64_t xx = ox * g->sw - g->left + j * g->dw;
        float *dst = row + (i * g->kw + j) * g->ci;
        if (y < 0 || y >= g->h || xx < 0 || xx >= g->w) memset(dst, 0, (size_t)g->ci * sizeof(float));
        else memcpy(dst, x + ((n * g->h + y) * g->w + xx) * g->ci, (size_t)g->ci * sizeof(float));
      }
    }
  }
}

/** The reverse of im2col: adds each column value into the input element it was read from. */
static void col2im_add(const Geometry *g, const float *cols, int64_t m0, int64_t rows, float *dx) {
  const int64_t k = g->kh * g->kw * g->ci;
  for (int64_t r = 0; r < rows; r++) {
    int64_t m = m0 + r;
    int64_t ox = m % g->wo, oy = (m / g->wo) % g->ho, n = m / (g->wo * g->ho);
    const float *row = cols + r * k;
    for (int64_t i = 0; i < g->kh; i++) {
      int64_t y = oy * g->sh - g->top + i * g->dh;
      if (y < 0 || y >= g->h) continue;
      for (int64_t j = 0; j < g->kw; j++) {
        int64_t xx = ox * g->sw - g->left + j * g->dw;
        if (xx < 0 || xx >= g->w) continue;
        const float *src = row + (i * g->kw + j) * g->ci;
        float *dst = dx + ((n * g->h + y) * g->w + xx) * g->ci;
        for (int64_t c = 0; c < g->ci; c++) dst[c] += src[c];
      }
    }
  }
}

/** The column buffer for `m` rows of `k` columns, `*step` rows at a time (chunk_rows); NULL when out of memory. */
static float *column_buffer(const Geometry *g, int64_t m, int64_t k, int64_t *step) {
  *step = chunk_rows(g);
  return malloc((size_t)(*step < m ? *step : m) * (size_t)k * sizeof(float));
}

/** 0, or -1 when the column buffer could not be allocated. */
static int conv_forward(const Geometry *g, const float *x, const float *w, const float *bias, int relu, float *y) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)co, (int)k, 1.0f, x, (int)k, w, (int)co, 0.0f, y, (int)co);
  } else {
    int64_t step;
    float *cols = column_buffer(g, m, k, &step);
    if (!cols) return -1;
    for (int64_t m0 = 0; m0 < m; m0 += step) {
      int64_t rows = m - m0 < step ? m - m0 : step;
      im2col(g, x, m0, rows, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)co, (int)k, 1.0f, cols, (int)k, w, (int)co, 0.0f, y + m0 * co, (int)co);
    }
    free(cols);
  }
  if (bias || relu) {
    for (int64_t r = 0; r < m; r++) {
      float *row = y + r * co;
      if (bias) for (int64_t c = 0; c < co; c++) row[c] += bias[c];
      if (relu) for (int64_t c = 0; c < co; c++) row[c] = row[c] > 0.0f ? row[c] : 0.0f;
    }
  }
  return 0;
}

/** 0, or -1 when the column buffer could not be allocated. */
static int conv_backprop_input(const Geometry *g, const float *dy, const float *w, float *dx) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)co, 1.0f, dy, (int)co, w, (int)co, 0.0f, dx, (int)k);
    return 0;
  }
  memset(dx, 0, (size_t)(g->b * g->h * g->w * g->ci) * sizeof(float));
  int64_t step;
  float *cols = column_buffer(g, m, k, &step);
  if (!cols) return -1;
  for (int64_t m0 = 0; m0 < m; m0 += step) {
    int64_t rows = m - m0 < step ? m - m0 : step;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)co, 1.0f, dy + m0 * co, (int)co, w, (int)co, 0.0f, cols, (int)k);
    col2im_add(g, cols, m0, rows, dx);
  }
  free(cols);
  return 0;
}

/** 0, or -1 when the column buffer could not be allocated. */
static int conv_backprop_filter(const Geometry *g, const float *x, const float *dy, float *dw) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)co, (int)m, 1.0f, x, (int)k, dy, (int)co, 0.0f, dw, (int)co);
    return 0;
  }
  if (m == 0) {
    memset(dw, 0, (size_t)(k * co) * sizeof(float));
    return 0;
  }
  int64_t step;
  float *cols = column_buffer(g, m, k, &step);
  if (!cols) return -1;
  for (int64_t m0 = 0; m0 < m; m0 += step) {
    int64_t rows = m - m0 < step ? m - m0 : step;
    im2col(g, x, m0, rows, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)co, (int)rows, 1.0f, cols, (int)k, dy + m0 * co,
                (int)co, m0 == 0 ? 0.0f : 1.0f, dw, (int)co);
  }
  free(cols);
  return 0;
}

// ---- N-API glue ----

#define MAX_ARGS 24

/** The heap (argument 0) as a float pointer and its length in elements; NULL after throwing. */
static float *heap_of(napi_env env, napi_value value, size_t *length) {
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "blas-kernels: argument 0 must be a Float32Array over the wasm heap");
    return NULL;
  }
  return data;
}

/** Reads `count` integer arguments after the heap; returns 0 after throwing. */
static int integer_args(napi_env env, napi_callback_info info, size_t count, napi_value *heap, int64_t *out) {
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != count + 1) {
    napi_throw_type_error(env, NULL, "blas-kernels: wrong number of arguments");
    return 0;
  }
  *heap = argv[0];
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[i + 1], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "blas-kernels: arguments after the heap must be integers");
      return 0;
    }
  }
  return 1;
}

static void out_of_memory(napi_env env) {
  napi_throw_error(env, NULL, "blas-kernels: out of memory for the column buffer");
}

static void read_geometry(const int64_t *a, Geometry *g) {
  *g = (Geometry){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]};
}

/** conv2d(heap, 15 geometry ints, x, w, bias (-1: none), relu (0/1), y) */
static napi_value Conv2d(napi_env env, napi_callback_info info) {
  int64_t a[20];
  napi_value heap_value;
  size_t length;
  if (!integer_args(env, info, 20, &heap_value, a)) return NULL;
  float *heap = heap_of(env, heap_value, &length);
  if (!heap) return NULL;
  Geometry g;
  read_geometry(a, &g);
  if (conv_forward(&g, heap + a[15], heap + a[16], a[17] < 0 ? NULL : heap + a[17], (int)a[18], heap + a[19]) != 0) out_of_memory(env);
  return NULL;
}

/** A convolution's gradient: (geometry, first operand, second operand, result). */
typedef int (*ConvGradient)(const Geometry *g, const float *first, const float *second, float *result);

/** The two gradients' shared call: (heap, 15 geometry ints, first, second, result). */
static napi_value conv_gradient(napi_env env, napi_callback_info info, ConvGradient gradient) {
  int64_t a[18];
  napi_value heap_value;
  size_t length;
  if (!integer_args(env, info, 18, &heap_value, a)) return NULL;
  float *heap = heap_of(env, heap_value, &length);
  if (!heap) return NULL;
  Geometry g;
  read_geometry(a, &g);
  if (gradient(&g, heap + a[15], heap + a[16], heap + a[17]) != 0) out_of_memory(env);
  return NULL;
}

/** conv2dBackpropInput(heap, 15 geometry ints, dy, w, dx) */
static napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  return conv_gradient(env, info, conv_backprop_input);
}

/** conv2dBackpropFilter(heap, 15 geometry ints, x, dy, dw) */
static napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  return conv_gradient(env, info, conv_backprop_filter);
}

/**
 * matMul(heap, batch, m, n, k, transposeA, transposeB, strideA, strideB, a, b, bias (-1: none), relu, c):
 * c[i] = op(a[i]) op(b[i]) for i < batch, where a[i] = a + i*strideA (stride 0 broadcasts one matrix).
 */
static napi_value MatMul(napi_env env, napi_callback_info info) {
  int64_t a[13];
  napi_value heap_value;
  size_t length;
  if (!integer_args(env, info, 13, &heap_value, a)) return NULL;
  float *heap = heap_of(env, heap_value, &length);
  if (!heap) return NULL;
  int64_t batch = a[0], m = a[1], n = a[2], k = a[3];
  int ta = (int)a[4], tb = (int)a[5];
  const float *bias = a[10] < 0 ? NULL : heap + a[10];
  int relu = (int)a[11];
  float *c = heap + a[12];
  for (int64_t i = 0; i < batch; i++) {
    const float *ai = heap + a[8] + i * a[6];
    const float *bi = heap + a[9] + i * a[7];
    float *ci = c + i * m * n;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                ai, ta ? (int)m : (int)k, bi, tb ? (int)k : (int)n, 0.0f, ci, (int)n);
    if (bias || relu) {
      for (int64_t r = 0; r < m; r++) {
        float *row = ci + r * n;
        if (bias) for (int64_t col = 0; col < n; col++) row[col] += bias[col];
        if (relu) for (int64_t col = 0; col < n; col++) row[col] = row[col] > 0.0f ? row[col] : 0.0f;
      }
    }
  }
  return NULL;
}

/** setThreads(n): OpenBLAS's thread count. */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  int32_t n = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_type_error(env, NULL, "blas-kernels: setThreads needs a positive integer");
    return NULL;
  }
  openblas_set_num_threads(n);
  return NULL;
}

/** threads(): OpenBLAS's thread count now. */
static napi_value Threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, openblas_get_num_threads(), &result);
  return result;
}

/** version(): OpenBLAS's configuration string ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... SkylakeX MAX_THREADS=64"). */
static napi_value Version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  const char *config = openblas_get_config();
  const char *core = openblas_get_corename();
  char text[512];
  snprintf(text, sizeof text, "%s (%s)", config ? config : "OpenBLAS", core ? core : "unknown core");
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
    {"conv2d", NULL, Conv2d, NULL, NULL, NULL, napi_default, NULL},
    {"conv2dBackpropInput", NULL, Conv2dBackpropInput, NULL, NULL, NULL, napi_default, NULL},
    {"conv2dBackpropFilter", NULL, Conv2dBackpropFilter, NULL, NULL, NULL, napi_default, NULL},
    {"matMul", NULL, MatMul, NULL, NULL, NULL, napi_default, NULL},
    {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
    {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
    {"version", NULL, Version, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
