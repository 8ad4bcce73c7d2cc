/**
 * How the host backs guest RAM: transparent huge pages for v86's wasm memory.
 *
 * v86 keeps guest RAM in its WebAssembly.Memory, which V8 maps with ordinary 4 KiB
 * pages. Asking Linux for 2 MiB transparent huge pages there (madvise(MADV_HUGEPAGE),
 * as QEMU does for its guest RAM) makes the image's O_DIRECT writes and the host's
 * first touch of guest RAM markedly faster (docs/V86.md, "Guest RAM on host huge pages").
 * Node has no madvise, so hiberlab's N-API module (native/host-memory.c, src/native.ts)
 * does it; `npm install` builds it with node-gyp (binding.gyp). Where it is missing or the host has no THP,
 * machines run on 4 KiB pages and `hugePages` says why.
 */
import { readFileSync } from 'node:fs';
import { hiberlabNative } from '../native.ts';
import { pageAlignedMemory } from '../wasm.ts';

/** What became of the request for huge pages behind a range of guest RAM. */
export interface HugePageAdvice {
  /** Bytes now advised for huge pages: the 2 MiB-aligned interior of the range; 0 when not. */
  readonly advisedBytes: number;
  /** The host's THP mode (/sys/kernel/mm/transparent_hugepage/enabled): `always`, `madvise`, `never`, or `unsupported`. */
  readonly mode: string;
  /** Why nothing was advised, when nothing was. */
  readonly reason?: string;
}

/** The host's transparent huge page mode: the bracketed word in sysfs, or `unsupported`. */
export function transparentHugePageMode(): string {
  try {
    const text = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    return /\[(\w+)\]/.exec(text)?.[1] ?? 'unsupported';
  } catch {
    return 'unsupported';
  }
}

/**
 * Asks the host to back `buffer[offset, offset + length)` with huge pages. Pages the
 * host has already committed keep their 4 KiB pages; everything touched afterwards
 * in a 2 MiB-aligned span of the range comes as one huge page. Never throws: what
 * could not be done is in `reason`.
 */
export function adviseHugePages(buffer: ArrayBuffer, offset: number, length: number): HugePageAdvice {
  const mode = transparentHugePageMode();
  if (mode === 'never' || mode === 'unsupported') return { advisedBytes: 0, mode, reason: `the host's transparent huge pages are ${mode === 'never' ? 'off' : 'not available'}` };
  const native = hiberlabNative();
  if (native instanceof Error) return { advisedBytes: 0, mode, reason: native.message };
  try {
    return { advisedBytes: native.adviseHugePages(buffer, offset, length), mode };
  } catch (e) {
    return { advisedBytes: 0, mode, reason: (e as Error).message };
  }
}

/**
 * Page-aligned host memory advised for huge pages like guest RAM: a WebAssembly.Memory,
 * so that benchmarks' raw-I/O baselines read and write memory backed as guest RAM is.
 */
export function hugePageMemory(bytes: number): { bytes: Uint8Array; advice: HugePageAdvice } {
  const span = 2 << 20;
  const buffer = pageAlignedMemory(bytes + span).buffer as ArrayBuffer;
  const native = hiberlabNative();
  // Start on a 2 MiB boundary when the helper can tell where the buffer lies.
  const start = native instanceof Error ? 0 : (span - (native.address(buffer) % span)) % span;
  const advice = adviseHugePages(buffer, start, bytes);
  return { bytes: new Uint8Array(buffer, start, bytes), advice };
}
