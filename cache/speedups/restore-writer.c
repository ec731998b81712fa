/*
 * The streamed restore's file writer (cache/streamed-restore.ts) as one C call per batch of files: for each,
 * open(O_CREAT|O_EXCL), write, fchmod when the umask needs it, futimens, fstat, close, the same system calls
 * the worker's JavaScript loop makes, without building a Stats object with four Dates per file (Node 20) and the
 * garbage that leaves. Optional: cache/restore-writer-addon.ts says when it is used and what it earned.
 *
 * writeFiles(prefix, paths, bytes, offsets, sizes, seconds, chmod, out) -> files written, or -errno
 *   prefix  the temp tree's path and a '/'
 *   paths   the files' paths below it, each ended by a NUL
 *   bytes   the batch's buffer; file k is bytes[offsets[k], offsets[k] + sizes[k])
 *   seconds the files' atime and mtime, in seconds, as Node's futimes takes it
 *   chmod   whether to fchmod 0644 (the umask would take bits of it)
 *   out     Float64Array, 6 per file: size, mtime s, mtime ns, ctime s, ctime ns, inode
 * On an error the files before the failing one are written (and their stats filled); the failing one may
 * exist, partly written: the caller discards the whole tree.
 */
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static napi_value number(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

/* The timespec libuv gives futimes for a time in seconds (uv__fs_to_timespec): microsecond resolution. */
static struct timespec timespec_of(double time) {
  struct timespec ts;
  ts.tv_sec = (time_t)time;
  ts.tv_nsec = (long)((time - (double)ts.tv_sec) * 1e9);
  ts.tv_nsec -= ts.tv_nsec % 1000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

static void *typed_data(napi_env env, napi_value value, size_t *length) {
  napi_typedarray_type type;
  void *data = NULL;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, &data, &buffer, &offset) != napi_ok) return NULL;
  return data;
}

static int write_one(const char *path, const unsigned char *bytes, size_t size, int chmod, const struct timespec times[2], double *out) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int error = 0;
  size_t at = 0;
  while (at < size) {
    ssize_t n = write(fd, bytes + at, size - at);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = -errno;
      break;
    }
    at += (size_t)n;
  }
  struct stat s;
  if (!error && chmod && fchmod(fd, 0644) < 0) error = -errno;
  if (!error && futimens(fd, times) < 0) error = -errno;
  if (!error && fstat(fd, &s) < 0) error = -errno;
  if (close(fd) < 0 && !error && errno != EINTR) error = -errno;
  if (error) return error;
  out[0] = (double)s.st_size;
  out[1] = (double)s.st_mtim.tv_sec;
  out[2] = (double)s.st_mtim.tv_nsec;
  out[3] = (double)s.st_ctim.tv_sec;
  out[4] = (double)s.st_ctim.tv_nsec;
  out[5] = (double)s.st_ino;
  return 0;
}

static napi_value write_files(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 8) return number(env, -EINVAL);
  size_t prefix_length = 0, paths_length = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &prefix_length) != napi_ok) return number(env, -EINVAL);
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &paths_length) != napi_ok) return number(env, -EINVAL);
  size_t bytes_length = 0, offsets_length = 0, sizes_length = 0, out_length = 0;
  const unsigned char *bytes = typed_data(env, argv[2], &bytes_length);
  const int32_t *offsets = typed_data(env, argv[3], &offsets_length);
  const int32_t *sizes = typed_data(env, argv[4], &sizes_length);
  double seconds = 0;
  bool chmod = false;
  double *out = typed_data(env, argv[7], &out_length);
  if (!bytes || !offsets || !sizes || !out || sizes_length != offsets_length || out_length < 6 * offsets_length) return number(env, -EINVAL);
  if (napi_get_value_double(env, argv[5], &seconds) != napi_ok || !isfinite(seconds)) return number(env, -EINVAL);
  napi_get_value_bool(env, argv[6], &chmod);
  /* One buffer: the prefix, then room for the longest path; the paths read into a second one. */
  char *paths = malloc(paths_length + 1);
  char *path = malloc(prefix_length + paths_length + 1);
  if (!paths || !path) {
    free(paths);
    free(path);
    return number(env, -ENOMEM);
  }
  napi_get_value_string_utf8(env, argv[0], path, prefix_length + 1, &prefix_length);
  napi_get_value_string_utf8(env, argv[1], paths, paths_length + 1, &paths_length);
  struct timespec times[2];
  times[0] = times[1] = timespec_of(seconds);
  int result = 0;
  size_t at = 0;
  size_t k = 0;
  for (; k < offsets_length; k++) {
    size_t length = strnlen(paths + at, paths_length - at);
    if (at + length >= paths_length || offsets[k] < 0 || sizes[k] < 0 || (size_t)offsets[k] + (size_t)sizes[k] > bytes_length) {
      result = -EINVAL;
      break;
    }
    memcpy(path + prefix_length, paths + at, length + 1);
    at += length + 1;
    result = write_one(path, bytes + offsets[k], (size_t)sizes[k], chmod, times, out + 6 * k);
    if (result < 0) break;
  }
  free(paths);
  free(path);
  return number(env, result < 0 ? result : (double)k);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
    {"writeFiles", NULL, write_files, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 1, functions);
  return exports;
}
