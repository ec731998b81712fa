// ROIAlign's bilinear blend on the CPU (stages/model/roi-align.ts, the 'js' implementation that cpu and wasm
// use): the same loops as its JavaScript, with the same results to the bit, for the cpu profile's ~28k samples x
// 4 neighbours x 64 channels per step. Loaded by kernels/native/roi-blend.ts; every array is a typed array the caller sized and checked.
//
//   forward   out[outputRows[m] + cell, c]  += weight * map[index, c]
//   backward  grad[index, c] += weight * dy[outputRows[m] + cell, c]
// over the boxes m, their cells, and the 4 neighbours (index, weight) of each cell with a non-zero weight.
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  float *a;
  size_t a_length;
  const int32_t *indices;
  const float *weights;
  size_t samples;
  const int32_t *output_rows;
  size_t boxes;
  float *b;
  size_t b_length;
  int64_t cells, channels;
} Blend;

static void *typed_array(napi_env env, napi_value value, napi_typedarray_type want, size_t *length) {
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &data, NULL, NULL) != napi_ok || type != want) return NULL;
  return data;
}

/** blend(map, indices, weights, outputRows, cells, channels, out) or its backward(dy, ..., grad). */
static int read_args(napi_env env, napi_callback_info info, Blend *blend) {
  napi_value argv[7];
  size_t argc = 7, indices_length, weights_length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) return 0;
  blend->a = typed_array(env, argv[0], napi_float32_array, &blend->a_length);
  blend->indices = typed_array(env, argv[1], napi_int32_array, &indices_length);
  blend->weights = typed_array(env, argv[2], napi_float32_array, &weights_length);
  blend->output_rows = typed_array(env, argv[3], napi_int32_array, &blend->boxes);
  blend->b = typed_array(env, argv[6], napi_float32_array, &blend->b_length);
  if (!blend->a || !blend->indices || !blend->weights || !blend->output_rows || !blend->b) return 0;
  if (napi_get_value_int64(env, argv[4], &blend->cells) != napi_ok || napi_get_value_int64(env, argv[5], &blend->channels) != napi_ok) return 0;
  blend->samples = indices_length / 4;
  return indices_length == weights_length && blend->cells > 0 && blend->channels > 0 &&
         (size_t)blend->cells * blend->boxes == blend->samples;
}

/**
 * Runs the blend; `forward` reads the map (a) into the output (b), else the output's gradient (a) into the map's
 * (b). Returns 0 when an index points outside its array (nothing is written past it).
 */
static int run(const Blend *g, int forward) {
  const int64_t channels = g->channels;
  const size_t map_rows = (forward ? g->a_length : g->b_length) / (size_t)channels;
  const size_t out_rows = (forward ? g->b_length : g->a_length) / (size_t)channels;
  for (size_t m = 0; m < g->boxes; m++) {
    for (int64_t cell = 0; cell < g->cells; cell++) {
      int64_t row = (int64_t)g->output_rows[m] + cell;
      size_t k = (m * (size_t)g->cells + (size_t)cell) * 4;
      if (row < 0 || (size_t)row >= out_rows) return 0;
      for (int q = 0; q < 4; q++) {
        float weight = g->weights[k + q];
        if (weight == 0.0f) continue;
        int32_t index = g->indices[k + q];
        if (index < 0 || (size_t)index >= map_rows) return 0;
        const float *src = forward ? g->a + (size_t)index * channels : g->a + (size_t)row * channels;
        float *dst = forward ? g->b + (size_t)row * channels : g->b + (size_t)index * channels;
        // In double and rounded once per addition, as JavaScript computes `out[i] += w * map[j]` on a
        // Float32Array: the results are the loops' to the bit.
        const double w = (double)weight;
        for (int64_t c = 0; c < channels; c++) dst[c] = (float)((double)dst[c] + w * (double)src[c]);
      }
    }
  }
  return 1;
}

static napi_value Blend_(napi_env env, napi_callback_info info, int forward) {
  Blend blend;
  if (!read_args(env, info, &blend)) {
    napi_throw_type_error(env, NULL, "roi-blend: expected (Float32Array, Int32Array, Float32Array, Int32Array, cells, channels, Float32Array) of matching sizes");
    return NULL;
  }
  if (!run(&blend, forward)) napi_throw_range_error(env, NULL, "roi-blend: a sample index is outside its array");
  return NULL;
}

static napi_value Forward(napi_env env, napi_callback_info info) { return Blend_(env, info, 1); }
static napi_value Backward(napi_env env, napi_callback_info info) { return Blend_(env, info, 0); }

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
    {"forward", NULL, Forward, NULL, NULL, NULL, napi_default, NULL},
    {"backward", NULL, Backward, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
