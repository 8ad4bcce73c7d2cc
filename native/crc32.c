/*
 * CRC-32 of whole pages (the zlib/IEEE polynomial, reflected, as src/image/crc.ts), one
 * call per run of pages.
 *
 * The image holds one CRC per 4096-byte page. Computed page by page from JavaScript,
 * each page costs a subarray and a call into a native CRC, about as much as the CRC
 * itself, on the main thread of a save. Here one call takes a whole run
 * (swsusp's 2 MiB pieces) and writes each page's CRC into a Uint32Array.
 *
 * Where the CPU has carry-less multiply (PCLMULQDQ), each page is folded 64 bytes at a
 * time in four 128-bit lanes, the lanes are folded into one, and its 16 bytes are reduced
 * with the byte table; otherwise the byte table does everything (correct, slow: the
 * TypeScript side only calls this when crc32Accelerated() is true).
 *
 * Exports (see module.c):
 *   crc32Accelerated()             → whether PCLMULQDQ is used
 *   crc32Pages(data, out, index)   → out[index + i] = CRC-32 of page i of data (a
 *                                    Uint8Array of whole 4096-byte pages)
 */
#include "native.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE 4096u

static uint32_t table[256];

static void make_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    table[i] = c;
  }
}

/* The raw (not inverted) register over n bytes. */
static uint32_t crc_bytes(uint32_t reg, const uint8_t *p, size_t n) {
  while (n--) reg = (reg >> 8) ^ table[(reg ^ *p++) & 0xffu];
  return reg;
}

static uint32_t crc_portable(const uint8_t *p, size_t n) {
  return ~crc_bytes(0xffffffffu, p, n);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_FOLD 1

/* x·k (both 64-bit halves, carry-less) xor next: one fold step of 128 bits. */
__attribute__((target("pclmul,sse4.1"))) static inline __m128i fold(__m128i x, __m128i k, __m128i next) {
  __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

/* CRC-32 of n bytes, n a multiple of 64 and at least 64 (a page). */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold(const uint8_t *p, size_t n) {
  /* x^(512+32) and x^(512-32) mod P (fold by four lanes), x^(128+32) and x^(128-32)
     mod P (fold by one lane), bit-reflected: the constants of Intel's "Fast CRC
     Computation Using PCLMULQDQ" for the reflected IEEE polynomial. */
  const __m128i by4 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
  const __m128i by1 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
  __m128i x0 = _mm_loadu_si128((const __m128i *)p);
  __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));
  x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)0xffffffffu)); /* the initial register, ~0 */
  for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
    x0 = fold(x0, by4, _mm_loadu_si128((const __m128i *)p));
    x1 = fold(x1, by4, _mm_loadu_si128((const __m128i *)(p + 16)));
    x2 = fold(x2, by4, _mm_loadu_si128((const __m128i *)(p + 32)));
    x3 = fold(x3, by4, _mm_loadu_si128((const __m128i *)(p + 48)));
  }
  x0 = fold(x0, by1, x1);
  x0 = fold(x0, by1, x2);
  x0 = fold(x0, by1, x3);
  /* x0 now leaves the same remainder as the whole message: reduce its 16 bytes. */
  uint8_t rest[16];
  _mm_storeu_si128((__m128i *)rest, x0);
  return ~crc_bytes(0, rest, 16);
}
#else
#define HAVE_FOLD 0
#endif

static int accelerated;

static napi_value crc32_accelerated(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, accelerated, &out);
  return out;
}

static napi_value crc32_pages(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type data_type, out_type;
  size_t data_length, out_length;
  void *data, *out;
  double index;
  bool is_typed = false;
  if (argc < 3 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[0], &data_type, &data_length, &data, NULL, NULL) != napi_ok || data_type != napi_uint8_array ||
      napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &out_type, &out_length, &out, NULL, NULL) != napi_ok || out_type != napi_uint32_array ||
      napi_get_value_double(env, argv[2], &index) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32Pages(data: Uint8Array, out: Uint32Array, index: number)");
    return NULL;
  }
  size_t pages = data_length / PAGE;
  if (data_length % PAGE != 0 || !(index >= 0) || index != (double)(size_t)index || (size_t)index + pages > out_length) {
    napi_throw_range_error(env, NULL, "crc32Pages: data must be whole 4096-byte pages, and out must have room for their CRCs from index on");
    return NULL;
  }
  const uint8_t *p = data;
  uint32_t *crcs = (uint32_t *)out + (size_t)index;
  for (size_t i = 0; i < pages; i++, p += PAGE) {
#if HAVE_FOLD
    crcs[i] = accelerated ? crc_fold(p, PAGE) : crc_portable(p, PAGE);
#else
    crcs[i] = crc_portable(p, PAGE);
#endif
  }
  return NULL;
}

/* Once per process: worker threads load the module too. */
static void setup(void) {
  make_table();
#if HAVE_FOLD
  __builtin_cpu_init();
  accelerated = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

void crc32_register(napi_env env, napi_value exports) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  napi_property_descriptor props[] = {
    { "crc32Accelerated", NULL, crc32_accelerated, NULL, NULL, NULL, napi_enumerable, NULL },
    { "crc32Pages", NULL, crc32_pages, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
