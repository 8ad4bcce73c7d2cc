/* hiberlab's native helpers: one N-API module (module.c) made of these parts. */
#ifndef HIBERLAB_NATIVE_H
#define HIBERLAB_NATIVE_H
#include <node_api.h>

/* host-memory.c: madvise for guest RAM. */
void hostmem_register(napi_env env, napi_value exports);
/* crc32.c: CRC-32 of whole pages. */
void crc32_register(napi_env env, napi_value exports);

#endif
