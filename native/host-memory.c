/*
 * How the host backs guest RAM.
 *
 * One call matters: madvise(MADV_HUGEPAGE) on the part of an ArrayBuffer (v86's wasm
 * memory) that holds guest RAM, so that Linux backs it with 2 MiB transparent huge
 * pages, as QEMU does for its guest RAM. Node has no madvise of its own. See
 * docs/V86.md, "Guest RAM on host huge pages", for what it changes (by how much: the
 * notes of docs/BENCHMARKS.md).
 *
 * Exports (see module.c):
 *   hugePageSize()                           → 2 MiB, the span the advice rounds to
 *   address(buffer)                          → the host address of the buffer's first byte
 *   adviseHugePages(buffer, offset, length)  → bytes advised: the 2 MiB-aligned interior of
 *                                              [offset, offset + length); throws on failure
 */
#define _GNU_SOURCE
#include "native.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((uintptr_t)2 << 20)

static napi_value fail(napi_env env, const char *what) {
  napi_throw_error(env, NULL, what);
  return NULL;
}

/* The call's first n arguments into argv, the first of them an ArrayBuffer (its data and length); 0 when not. */
static int buffer_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv, void **data, size_t *length) {
  size_t argc = n;
  bool is_ab = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return 0;
  if (napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab) return 0;
  return napi_get_arraybuffer_info(env, argv[0], data, length) == napi_ok;
}

static napi_value huge_page_size(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_double(env, (double)HUGE_PAGE, &out);
  return out;
}

static napi_value address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t length;
  if (!buffer_call(env, info, 1, argv, &data, &length)) return fail(env, "address(buffer): buffer must be an ArrayBuffer");
  napi_value out;
  napi_create_double(env, (double)(uintptr_t)data, &out); /* user addresses fit in 53 bits */
  return out;
}

static napi_value advise_huge_pages(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *data;
  size_t length;
  double offset, count;
  if (!buffer_call(env, info, 3, argv, &data, &length)) return fail(env, "adviseHugePages(buffer, offset, length): buffer must be an ArrayBuffer");
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok || napi_get_value_double(env, argv[2], &count) != napi_ok ||
      offset < 0 || count < 0 || offset + count > (double)length) {
    return fail(env, "adviseHugePages(buffer, offset, length): the range must lie inside the buffer");
  }
  uintptr_t first = (uintptr_t)data + (uintptr_t)offset;
  uintptr_t start = (first + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t end = (first + (uintptr_t)count) & ~(HUGE_PAGE - 1);
  double advised = 0;
  if (end > start) {
#ifdef MADV_HUGEPAGE
    if (madvise((void *)start, end - start, MADV_HUGEPAGE) != 0) {
      char message[160];
      snprintf(message, sizeof message, "madvise(MADV_HUGEPAGE) failed: %s", strerror(errno));
      return fail(env, message);
    }
    advised = (double)(end - start);
#else
    return fail(env, "this host has no MADV_HUGEPAGE");
#endif
  }
  napi_value out;
  napi_create_double(env, advised, &out);
  return out;
}

void hostmem_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "hugePageSize", NULL, huge_page_size, NULL, NULL, NULL, napi_enumerable, NULL },
    { "address", NULL, address, NULL, NULL, NULL, napi_enumerable, NULL },
    { "adviseHugePages", NULL, advise_huge_pages, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
