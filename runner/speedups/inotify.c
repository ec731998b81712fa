/*
 * The watch daemon's inotify binding: a Node N-API addon exposing inotify_init1, inotify_add_watch and
 * inotify_rm_watch and nothing else (runner/watch/inotify-binding.ts compiles it with `cc` on first use and
 * says why no package serves: they drop IN_Q_OVERFLOW). Earns its place: a warm `runner status` of one stage
 * with stage1_train (30k files, 2013 folders) as its dep took 0.09-0.10 s with `runner watch` against
 * 0.19-0.24 s walking (three runs each; the setup of bench/runner-peers.ts' realDataStatus) on the 2-core VM
 * while other work shared it, 2026-12-06.
 */
#include <node_api.h>
#include <sys/inotify.h>
#include <errno.h>
#include <stdlib.h>

/* Every function returns a number: the result (>= 0) or -errno. */
static napi_value number(napi_env env, int value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static int int_arg(napi_env env, napi_value value) {
  int32_t out = -1;
  napi_get_value_int32(env, value, &out);
  return out;
}

/* Fills argv with the call's first `want` arguments; 0, or -EINVAL when fewer were given. */
static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc < want ? -EINVAL : 0;
}

static napi_value init(napi_env env, napi_callback_info info) {
  int fd = inotify_init1(IN_CLOEXEC);
  return number(env, fd < 0 ? -errno : fd);
}

/* addWatch(fd, path, mask) -> wd or -errno */
static napi_value add_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) < 0) return number(env, -EINVAL);
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok) return number(env, -EINVAL);
  char *path = malloc(length + 1);
  if (!path) return number(env, -ENOMEM);
  napi_get_value_string_utf8(env, argv[1], path, length + 1, &length);
  uint32_t mask = 0;
  napi_get_value_uint32(env, argv[2], &mask);
  int wd = inotify_add_watch(int_arg(env, argv[0]), path, mask);
  int err = errno;
  free(path);
  return number(env, wd < 0 ? -err : wd);
}

/* rmWatch(fd, wd) -> 0 or -errno */
static napi_value rm_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (args(env, info, 2, argv) < 0) return number(env, -EINVAL);
  int result = inotify_rm_watch(int_arg(env, argv[0]), int_arg(env, argv[1]));
  return number(env, result < 0 ? -errno : 0);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
    {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
    {"addWatch", NULL, add_watch, NULL, NULL, NULL, napi_default, NULL},
    {"rmWatch", NULL, rm_watch, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, functions);
  return exports;
}
