/*
 * LZ4 for the suspend module: one 4096-byte page as one block of lz4's block format (the
 * format Linux's hibernation writes with hibernate.compressor=lz4). Plain C with no
 * dependency but memset, so that the tests also build it for the host and check every
 * block it makes against the harness's decoder (test/lz4-encoder.test.ts).
 */
#include "lz4.h"

void *memset(void *d, int c, __SIZE_TYPE__ n);

#define LZ4_MIN_MATCH 4
#define LZ4_LAST_LITERALS 5             /* the last 5 bytes of a block are literals */
#define LZ4_MATCH_LIMIT 12              /* the last match starts at least 12 bytes before the end */

static uint32_t read32(const uint8_t *b)
{
    return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* A length beyond a token's 15: bytes of 255, then the rest. */
static uint32_t lz4_length(uint8_t *dst, uint32_t op, uint32_t rest)
{
    while (rest >= 255) {
        dst[op++] = 255;
        rest -= 255;
    }
    dst[op++] = (uint8_t)rest;
    return op;
}

/* One sequence: `nlit` literals, then (match != 0) a match of `match` bytes `distance` back. */
static uint32_t lz4_sequence(uint8_t *dst, uint32_t op, const uint8_t *lit, uint32_t nlit, uint32_t distance, uint32_t match)
{
    uint32_t token = op++, i;
    dst[token] = (uint8_t)((nlit < 15 ? nlit : 15) << 4);
    if (nlit >= 15)
        op = lz4_length(dst, op, nlit - 15);
    for (i = 0; i < nlit; i++)
        dst[op++] = lit[i];
    if (!match)
        return op;
    dst[op++] = (uint8_t)distance;
    dst[op++] = (uint8_t)(distance >> 8);
    match -= LZ4_MIN_MATCH;
    dst[token] |= (uint8_t)(match < 15 ? match : 15);
    if (match >= 15)
        op = lz4_length(dst, op, match - 15);
    return op;
}

/* The most bytes a sequence of nlit literals and a match of `match` bytes can take. */
static uint32_t lz4_bound(uint32_t nlit, uint32_t match)
{
    return 1 + nlit / 255 + 1 + nlit + (match ? 2 + match / 255 + 1 : 0);
}

/*
 * One page as an LZ4 block into dst (greedy: the first 4-byte match the hash table
 * remembers, extended as far as it goes). Returns its size, or 0 when the block would
 * not be smaller than the page (the page is then stored whole).
 */
uint32_t lz4_page(const uint8_t *src, uint8_t *dst, uint16_t *table)
{
    const uint32_t n = LZ4_PAGE_SIZE, limit = LZ4_PAGE_SIZE - 1;
    uint32_t ip = 0, anchor = 0, op = 0;

    memset(table, 0, sizeof(uint16_t) << LZ4_HASH_BITS);
    while (ip + LZ4_MATCH_LIMIT < n) {
        uint32_t seq = read32(src + ip), h = (seq * 2654435761u) >> (32 - LZ4_HASH_BITS);
        uint32_t ref = table[h], len = LZ4_MIN_MATCH;
        table[h] = (uint16_t)(ip + 1);              /* 0: empty */
        if (ref == 0 || read32(src + ref - 1) != seq) {
            ip++;
            continue;
        }
        ref--;
        while (ip + len < n - LZ4_LAST_LITERALS && src[ref + len] == src[ip + len])
            len++;
        if (op + lz4_bound(ip - anchor, len) > limit)
            return 0;
        op = lz4_sequence(dst, op, src + anchor, ip - anchor, ip - ref, len);
        ip += len;
        anchor = ip;
    }
    if (op + lz4_bound(n - anchor, 0) > limit)
        return 0;
    return lz4_sequence(dst, op, src + anchor, n - anchor, 0, 0);
}
