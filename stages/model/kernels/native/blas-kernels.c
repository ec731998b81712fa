// Convolutions and matrix products for the tfjs wasm backend, run natively on the system OpenBLAS
// (kernels/native/blas-kernels.ts loads it; kernels/native/wasm-blas-kernels.ts calls it).
//
// Every function reads its operands from, and writes its result into, the wasm heap: a Float32Array over the
// whole wasm memory (a SharedArrayBuffer when XNNPACK runs threads), addressed by element offsets. NHWC tensors,
// filters [kh, kw, Ci, Co]; the caller has checked every shape and offset against the heap.
//
// Convolutions are im2col + sgemm, in blocks of output pixels so each column buffer stays a few MiB:
//   forward        y[M, Co]  = cols[M, K] W[K, Co]           (+ bias, relu)
//   input grad     cols[M, K] = dy[M, Co] W^T                 then col2im adds cols into dx
//   filter grad    dW[K, Co] = sum over blocks of cols^T dy[M, Co]  (in up to BLOCKS partials)
// with M = B*Ho*Wo and K = kh*kw*Ci in (i, j, ci) order: the filter's own memory order. A 1x1 conv with stride 1
// and no padding needs no columns: x itself is [M, Ci].
//
// Threads: the blocks (im2col, sgemm, col2im and the bias/relu pass of each) are shared among `team` OpenMP
// threads, each calling a one-thread sgemm; OpenBLAS's own threading would leave everything between the sgemm
// calls on one core. The blocks depend on the shapes only, never on the thread count, so every result is the
// same on one thread as on two. Work too small to pay for waking a thread stays on the caller's.
#include <cblas.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (8u << 20)
/** Blocks per product (more where their columns would pass CHUNK_BYTES): enough for two threads to even out a slow one. */
#define BLOCKS 8
/** No block smaller than this many rows: sgemm's packing of the other operand is per call. */
#define MIN_BLOCK_ROWS 128
/** Below this many flops a product runs on one thread (a sleeping thread takes tens of microseconds to wake). */
#define MIN_PARALLEL_FLOPS 4.0e6

/** Threads for the parallel loops (setThreads). */
static int team = 1;

typedef struct {
  int64_t b, h, w, ci, kh, kw, co, sh, sw, dh, dw, top, left, ho, wo;
} Geometry;

static int is_pointwise(const Geometry *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->top == 0 && g->left == 0 && g->ho == g->h && g->wo == g->w;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/** Rows per block of an M-row product over K columns: M / BLOCKS, at least MIN_BLOCK_ROWS, and columns within CHUNK_BYTES. */
static int64_t block_rows(int64_t m, int64_t k) {
  int64_t fits = max64(64, (int64_t)CHUNK_BYTES / (int64_t)sizeof(float) / max64(k, 1));
  return min64(fits, max64(MIN_BLOCK_ROWS, (m + BLOCKS - 1) / BLOCKS));
}

/** The threads for `blocks` blocks of `flops` work in all. */
static int threads_for(int64_t blocks, double flops) {
  if (blocks < 2 || flops < MIN_PARALLEL_FLOPS) return 1;
  return (int)min64(team, blocks);
}

/**
 * This thread's column buffer of at least `floats` floats, kept between calls (the OpenMP threads live as long as
 * the process): a fresh 8 MiB malloc per call is an mmap and its page faults. NULL when out of memory.
 */
static float *column_buffer(size_t floats) {
  static _Thread_local float *buffer = NULL;
  static _Thread_local size_t capacity = 0;
  if (floats > capacity) {
    float *grown = realloc(buffer, floats * sizeof(float));
    if (!grown) return NULL;
    buffer = grown;
    capacity = floats;
  }
  return buffer;
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

/** Adds the bias and applies relu to `rows` rows of `n` values. */
static void bias_relu(float *y, int64_t rows, int64_t n, const float *bias, int relu) {
  if (!bias && !relu) return;
  for (int64_t r = 0; r < rows; r++) {
    float *row = y + r * n;
    if (bias) for (int64_t c = 0; c < n; c++) row[c] += bias[c];
    if (relu) for (int64_t c = 0; c < n; c++) row[c] = row[c] > 0.0f ? row[c] : 0.0f;
  }
}

/** 0, or -1 when a column buffer could not be allocated. */
static int conv_forward(const Geometry *g, const float *x, const float *w, const float *bias, int relu, float *y) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  const int pointwise = is_pointwise(g);
  const int64_t step = block_rows(m, k), blocks = (m + step - 1) / step;
  int failed = 0;
#pragma omp parallel num_threads(threads_for(blocks, 2.0 * (double)m * (double)k * (double)co)) reduction(| : failed)
  {
    float *cols = pointwise ? NULL : column_buffer((size_t)min64(step, m) * (size_t)k);
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; block++) {
      const int64_t m0 = block * step, rows = min64(step, m - m0);
      if (!pointwise && !cols) {
        failed = 1;
        continue;
      }
      if (!pointwise) im2col(g, x, m0, rows, cols);
      const float *a = pointwise ? x + m0 * k : cols;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)co, (int)k, 1.0f, a, (int)k, w, (int)co, 0.0f, y + m0 * co, (int)co);
      bias_relu(y + m0 * co, rows, co, bias, relu);
    }
  }
  return failed ? -1 : 0;
}

/**
 * 0, or -1 when a column buffer could not be allocated. Blocks are whole output rows; two blocks with one between
 * them never add into the same input element (a block has at least the rows a kernel window spans), so the even
 * blocks run together, then the odd ones.
 */
static int conv_backprop_input(const Geometry *g, const float *dy, const float *w, float *dx) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  const double flops = 2.0 * (double)m * (double)k * (double)co;
  if (is_pointwise(g)) {
    const int64_t step = block_rows(m, 0), blocks = (m + step - 1) / step;
#pragma omp parallel for num_threads(threads_for(blocks, flops)) schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; block++) {
      const int64_t m0 = block * step, rows = min64(step, m - m0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)co, 1.0f, dy + m0 * co, (int)co, w, (int)co, 0.0f, dx + m0 * k, (int)k);
    }
    return 0;
  }
  const int64_t out_rows = g->b * g->ho;
  const int64_t window_rows = ((g->kh - 1) * g->dh) / g->sh + 1;
  const int64_t rows_per_block = max64(window_rows, max64(1, block_rows(m, k) / g->wo));
  const int64_t blocks = (out_rows + rows_per_block - 1) / rows_per_block;
  const int64_t step = rows_per_block * g->wo;
  memset(dx, 0, (size_t)(g->b * g->h * g->w * g->ci) * sizeof(float));
  int failed = 0;
#pragma omp parallel num_threads(threads_for(blocks, flops)) reduction(| : failed)
  {
    float *cols = column_buffer((size_t)min64(step, m) * (size_t)k);
    for (int64_t parity = 0; parity < 2; parity++) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t half = 0; half < (blocks + 1 - parity) / 2; half++) {
        const int64_t m0 = (2 * half + parity) * step, rows = min64(step, m - m0);
        if (!cols) {
          failed = 1;
          continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)co, 1.0f, dy + m0 * co, (int)co, w, (int)co, 0.0f, cols, (int)k);
        col2im_add(g, cols, m0, rows, dx);
      }
    }
  }
  return failed ? -1 : 0;
}

/**
 * 0, or -1 when a buffer could not be allocated. The blocks are dealt to at most BLOCKS lanes (block b to lane
 * b % BLOCKS); a lane's blocks accumulate into its own partial in block order, and the partials are summed in lane
 * order: a fixed order on any thread count, with at most BLOCKS - 1 partials however many blocks there are.
 */
static int conv_backprop_filter(const Geometry *g, const float *x, const float *dy, float *dw) {
  const int64_t m = g->b * g->ho * g->wo, k = g->kh * g->kw * g->ci, co = g->co;
  if (m == 0) {
    memset(dw, 0, (size_t)(k * co) * sizeof(float));
    return 0;
  }
  const int pointwise = is_pointwise(g);
  const int64_t step = block_rows(m, pointwise ? 0 : k), blocks = (m + step - 1) / step, lanes = min64(blocks, BLOCKS);
  float *partials = lanes > 1 ? malloc((size_t)(lanes - 1) * (size_t)(k * co) * sizeof(float)) : NULL;
  if (lanes > 1 && !partials) return -1;
  int failed = 0;
#pragma omp parallel num_threads(threads_for(lanes, 2.0 * (double)m * (double)k * (double)co)) reduction(| : failed)
  {
    float *cols = pointwise ? NULL : column_buffer((size_t)min64(step, m) * (size_t)k);
#pragma omp for schedule(dynamic, 1)
    for (int64_t lane = 0; lane < lanes; lane++) {
      if (!pointwise && !cols) {
        failed = 1;
        continue;
      }
      float *out = lane == 0 ? dw : partials + (lane - 1) * k * co;
      for (int64_t block = lane; block < blocks; block += lanes) {
        const int64_t m0 = block * step, rows = min64(step, m - m0);
        if (!pointwise) im2col(g, x, m0, rows, cols);
        const float *a = pointwise ? x + m0 * k : cols;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)co, (int)rows, 1.0f, a, (int)k, dy + m0 * co, (int)co,
                    block == lane ? 0.0f : 1.0f, out, (int)co);
      }
    }
  }
  if (!failed) {
    for (int64_t lane = 1; lane < lanes; lane++) {
      const float *p = partials + (lane - 1) * k * co;
      for (int64_t i = 0; i < k * co; i++) dw[i] += p[i];
    }
  }
  free(partials);
  return failed ? -1 : 0;
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

/** c = op(a) op(b) (+ bias, relu) for one [m, n] product, its rows (or, with few rows, its columns) in blocks. */
static void matmul_one(int64_t m, int64_t n, int64_t k, int ta, int tb, const float *a, const float *b, const float *bias, int relu, float *c) {
  const int64_t row_step = block_rows(m, 0), row_blocks = (m + row_step - 1) / row_step;
  const int64_t col_step = row_blocks > 1 ? n : block_rows(n, 0), col_blocks = (n + col_step - 1) / col_step;
  const int64_t blocks = row_blocks * col_blocks;
#pragma omp parallel for num_threads(threads_for(blocks, 2.0 * (double)m * (double)n * (double)k)) schedule(dynamic, 1)
  for (int64_t block = 0; block < blocks; block++) {
    const int64_t m0 = (block / col_blocks) * row_step, rows = min64(row_step, m - m0);
    const int64_t n0 = (block % col_blocks) * col_step, cols = min64(col_step, n - n0);
    // Row m0 of op(a): a row of a, or (transposed) a column; column n0 of op(b) likewise.
    const float *a0 = ta ? a + m0 : a + m0 * k;
    const float *b0 = tb ? b + n0 * k : b + n0;
    float *c0 = c + m0 * n + n0;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)rows, (int)cols, (int)k, 1.0f,
                a0, ta ? (int)m : (int)k, b0, tb ? (int)k : (int)n, 0.0f, c0, (int)n);
    if (bias || relu) {
      for (int64_t r = 0; r < rows; r++) {
        float *row = c0 + r * n;
        if (bias) for (int64_t col = 0; col < cols; col++) row[col] += bias[n0 + col];
        if (relu) for (int64_t col = 0; col < cols; col++) row[col] = row[col] > 0.0f ? row[col] : 0.0f;
      }
    }
  }
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
  const float *bias = a[10] < 0 ? NULL : heap + a[10];
  for (int64_t i = 0; i < batch; i++) {
    matmul_one(m, n, k, (int)a[4], (int)a[5], heap + a[8] + i * a[6], heap + a[9] + i * a[7], bias, (int)a[11], heap + a[12] + i * m * n);
  }
  return NULL;
}

/** setThreads(n): the threads of the parallel loops; each sgemm runs on one (OpenBLAS's own threads stay at 1). */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  int32_t n = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_type_error(env, NULL, "blas-kernels: setThreads needs a positive integer");
    return NULL;
  }
  team = n;
  openblas_set_num_threads(1);
  return NULL;
}

/** threads(): the threads of the parallel loops now. */
static napi_value Threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, team, &result);
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
  openblas_set_num_threads(1); // until setThreads: the parallel loops, not OpenBLAS, use the cores
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
