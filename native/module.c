/*
 * hiberlab_native: the project's N-API module, built by `npm install` (binding.gyp,
 * node-gyp). N-API, so one build serves every Node version. Loaded by
 * src/native.ts; every part is optional there (the TypeScript falls back).
 *   host-memory.c  guest RAM on host huge pages (madvise)
 *   crc32.c        the image's page CRCs, one call per run of pages
 */
#include "native.h"

NAPI_MODULE_INIT() {
  hostmem_register(env, exports);
  crc32_register(env, exports);
  return exports;
}
