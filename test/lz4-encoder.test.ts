/**
 * The suspend module's LZ4 compressor (guest/smod/lz4.c), built for the host and run on
 * pages chosen to reach its edges: every block it makes must decode, with the harness's
 * decoder, to exactly the page it came from, and keep the block format's end rules.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { describe, expect, it } from 'vitest';
import { lz4DecodeBlock } from '../src/image/page-scan.mjs';

const PAGE = 4096;
const guest = new URL('../guest/smod/', import.meta.url).pathname;

// Reads pages from argv[1], writes for each a u32 size (0: stored whole) and the block.
const DRIVER = `
#include <stdio.h>
#include <stdlib.h>
#include "lz4.h"
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    static uint8_t page[LZ4_PAGE_SIZE], block[LZ4_PAGE_SIZE + 64];
    static uint16_t table[LZ4_TABLE_ENTRIES];
    if (!in || !out) return 2;
    while (fread(page, 1, LZ4_PAGE_SIZE, in) == LZ4_PAGE_SIZE) {
        uint32_t n = lz4_page(page, block, table);
        fwrite(&n, 4, 1, out);
        fwrite(block, 1, n, out);
    }
    return fclose(out) != 0;
}
`;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** Pages at the compressor's edges: nothing to find, everything to find, and lengths around 15 and 255. */
function pages(): Uint8Array[] {
  const next = rng(7);
  const out: Uint8Array[] = [];
  const page = (f: (i: number) => number) => out.push(Uint8Array.from({ length: PAGE }, (_, i) => f(i) & 0xff));
  page(() => 0);
  page(() => 0xa5);
  page((i) => i);
  page(() => next());
  for (const period of [1, 2, 3, 4, 5, 15, 16, 19, 255, 256, 270, 1000, 2047, 4000]) {
    const unit = Array.from({ length: period }, () => next());
    page((i) => unit[i % period]!);
  }
  // Literal runs of 14, 15, 16, 269, 270, 271 bytes between repeats, and a match that ends at every offset of the last 16 bytes.
  for (const lit of [14, 15, 16, 254, 255, 256, 269, 270, 271]) {
    page((i) => (i % (lit + 32) < lit ? next() : 0x11));
  }
  for (let tail = 0; tail < 16; tail++) page((i) => (i < PAGE - tail ? 0 : next()));
  // Almost incompressible: random with a few short repeats (blocks near the 4095-byte limit).
  for (let k = 0; k < 8; k++) {
    const p = Uint8Array.from({ length: PAGE }, () => next() & 0xff);
    for (let r = 0; r < 4 + k * 4; r++) {
      const at = 8 + (next() % (PAGE - 64));
      p.copyWithin(at + 16, at, at + 8 + (next() % 8));
    }
    out.push(p);
  }
  return out;
}

describe("the suspend module's LZ4 compressor, built for the host", () => {
  it('makes blocks that decode to their page exactly, end with literals, stay under a page; stores incompressible pages whole', () => {
    const dir = tmp.dirSync({ unsafeCleanup: true }).name;
    writeFileSync(join(dir, 'driver.c'), DRIVER);
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-I', guest, '-o', join(dir, 'lz4'), join(dir, 'driver.c'), join(guest, 'lz4.c')]);
    const input = pages();
    const inFile = join(dir, 'pages.bin');
    writeFileSync(inFile, Buffer.concat(input));
    execFileSync(join(dir, 'lz4'), [inFile, join(dir, 'blocks.bin')]);
    const blocks = readFileSync(join(dir, 'blocks.bin'));
    let at = 0;
    let compressed = 0;
    const whole: number[] = [];
    const out = new Uint8Array(PAGE);
    for (const [i, p] of input.entries()) {
      const n = blocks.readUInt32LE(at);
      const block = new Uint8Array(blocks.subarray(at + 4, at + 4 + n));
      at += 4 + n;
      if (n === 0) {
        whole.push(i);
        continue;
      }
      compressed++;
      expect(n, `page ${i}`).toBeLessThan(PAGE);
      expect(lz4DecodeBlock(block, out), `page ${i}`).toBe(true);
      expect(Buffer.compare(out, p), `page ${i}`).toBe(0);
      // The end rules: the last sequence is literals only, at least 5 of them.
      const lastToken = lastSequenceToken(block);
      expect(lastToken & 15, `page ${i}`).toBe(0);
    }
    expect(at).toBe(blocks.length);
    expect(compressed).toBeGreaterThan(40);
    expect(whole).toEqual([3]); // the random page only: a few repeats are enough to shrink the nearly random ones
    expect(lz4DecodeBlock(Uint8Array.of(0x50, 1, 2, 3, 4, 5), new Uint8Array(5))).toBe(true); // the end rule's shortest block
  });
});

/** The token of a block's last sequence, found by walking its sequences (the block decoded already). */
function lastSequenceToken(block: Uint8Array): number {
  let ip = 0;
  let token = 0;
  while (ip < block.length) {
    token = block[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) for (let b = 255; b === 255; ) lit += b = block[ip++]!;
    ip += lit;
    if (ip >= block.length) break;
    ip += 2;
    if ((token & 15) === 15) for (let b = 255; b === 255; ) b = block[ip++]!;
  }
  const literals = token >>> 4;
  if (literals < 5) throw new Error(`the last sequence has ${literals} literals`);
  return token;
}
