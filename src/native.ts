/**
 * hiberlab's N-API module (native/: module.c, host-memory.c, crc32.c), which `npm install`
 * builds with node-gyp from binding.gyp. Everything that uses it has a fallback, so a
 * missing build makes hiberlab slower, never wrong: callers get the Error that says why.
 */
import { createRequire } from 'node:module';
import { packagePath } from './package-root.ts';

export interface HiberlabNative {
  /** 2 MiB: the span madvise(MADV_HUGEPAGE) rounds to. */
  hugePageSize(): number;
  /** The host address of the buffer's first byte. */
  address(buffer: ArrayBuffer): number;
  /** madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior of [offset, offset + length); the bytes advised. Throws on failure. */
  adviseHugePages(buffer: ArrayBuffer, offset: number, length: number): number;
  /** Whether crc32Pages folds with the CPU's carry-less multiply. */
  crc32Accelerated(): boolean;
  /** out[index + i] = CRC-32 of page i of `data` (whole 4096-byte pages). */
  crc32Pages(data: Uint8Array, out: Uint32Array, index: number): void;
}

/** Where `npm install` puts the module (node-gyp's default output). */
export const NATIVE_MODULE_PATH = packagePath('build/Release/hiberlab_native.node');

let loaded: HiberlabNative | Error | undefined;

/** The native module, or the error that kept it from loading. */
export function hiberlabNative(): HiberlabNative | Error {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)(NATIVE_MODULE_PATH) as HiberlabNative;
    } catch (e) {
      loaded = new Error(`hiberlab's native module is not built (${NATIVE_MODULE_PATH}: ${(e as Error).message.split('\n')[0]}); \`npm install\` builds it with node-gyp`);
    }
  }
  return loaded;
}
