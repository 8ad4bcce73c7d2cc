/* The suspend module's LZ4 compressor (lz4.c). */
#ifndef SMOD_LZ4_H
#define SMOD_LZ4_H

#include <stdint.h>

#define LZ4_PAGE_SIZE 4096
#define LZ4_HASH_BITS 12
/* uint16_t entries of the hash table lz4_page needs (8 KiB). */
#define LZ4_TABLE_ENTRIES (1u << LZ4_HASH_BITS)

/*
 * One page as an LZ4 block into dst (at most LZ4_PAGE_SIZE - 1 bytes), using `table`
 * (LZ4_TABLE_ENTRIES entries, any contents). Returns the block's size, or 0 when the
 * block would not be smaller than the page (store the page whole).
 */
uint32_t lz4_page(const uint8_t *src, uint8_t *dst, uint16_t *table);

#endif
