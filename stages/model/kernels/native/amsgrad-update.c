// One AMSGrad update of one variable in one pass (stages/train/amsgrad.ts on wasm; kernels/native/amsgrad-update.ts
// registers it): the op-by-op update is 13 tfjs-wasm kernels per variable, each a pass over memory and a dispatch,
// ~1,300 per step for the cpu profile network. The same float32 operations in the same order, each rounded to
// float32 as the kernels round it (no fused multiply-add: -ffp-contract=off), so the results are the op-by-op
// update's to the bit:
//   g' = (g + x * c) * s           (the decay term only with a coefficient, the scale only with a clip factor)
//   m' = m * b1 + g' * c1          (c1 = 1 - b1, c2 = 1 - b2, as float32 scalars)
//   v' = v * b2 + (g' * g') * c2
//   h' = max(h, v')
//   x' = x - (m' * lr) / (sqrt(h') + eps)
#include <math.h>
#include <node_api.h>
#include <stdint.h>

/** update(heap, n, x, g, m, v, h, s (-1: none), x', m', v', h', b1, c1, b2, c2, lr, eps, c (NaN: none)) */
static napi_value Update(napi_env env, napi_callback_info info) {
  napi_value argv[19];
  size_t argc = 19;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t length;
  void *data = NULL;
  if (argc != 19 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "amsgrad-update: expected the heap as a Float32Array and 18 numbers");
    return NULL;
  }
  int64_t at[11];
  for (int i = 0; i < 11; i++) {
    if (napi_get_value_int64(env, argv[i + 1], &at[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "amsgrad-update: sizes and offsets must be integers");
      return NULL;
    }
  }
  double k[7];
  for (int i = 0; i < 7; i++) napi_get_value_double(env, argv[i + 12], &k[i]);
  const int64_t n = at[0];
  for (int i = 1; i < 11; i++) {
    if (i == 6 && at[i] < 0) continue;
    int64_t size = i == 6 ? 1 : n;
    if (n < 0 || at[i] < 0 || (uint64_t)(at[i] + size) > (uint64_t)length) {
      napi_throw_range_error(env, NULL, "amsgrad-update: an operand lies outside the heap");
      return NULL;
    }
  }
  float *heap = data;
  const float *x = heap + at[1], *g = heap + at[2], *m = heap + at[3], *v = heap + at[4], *h = heap + at[5];
  const float *scale = at[6] < 0 ? NULL : heap + at[6];
  float *x2 = heap + at[7], *m2 = heap + at[8], *v2 = heap + at[9], *h2 = heap + at[10];
  const float b1 = (float)k[0], c1 = (float)k[1], b2 = (float)k[2], c2 = (float)k[3], lr = (float)k[4], eps = (float)k[5];
  const int decayed = !isnan(k[6]);
  const float c = (float)k[6];
  const float s = scale ? scale[0] : 1.0f;
  for (int64_t i = 0; i < n; i++) {
    float grad = g[i];
    if (decayed) grad = grad + x[i] * c;
    if (scale) grad = grad * s;
    const float mi = m[i] * b1 + grad * c1;
    const float vi = v[i] * b2 + (grad * grad) * c2;
    const float hi = h[i] > vi ? h[i] : vi;
    const float step = (mi * lr) / (sqrtf(hi) + eps);
    x2[i] = x[i] - step;
    m2[i] = mi;
    v2[i] = vi;
    h2[i] = hi;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "update", NAPI_AUTO_LENGTH, Update, NULL, &fn);
  napi_set_named_property(env, exports, "update", fn);
  return exports;
}
