/**
 * Node's WebAssembly global, typed (its types live in lib.dom, which this project does not
 * load), and page-aligned host memory made from it.
 */

/** A compiled WebAssembly module (opaque here). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export const Wasm = (globalThis as unknown as {
  WebAssembly: {
    compile(bytes: Uint8Array): Promise<WasmModule>;
    instantiate(module: WasmModule, imports: object): Promise<{ exports: Record<string, unknown> }>;
    /** Compiles synchronously, on the calling thread. */
    Module: new (bytes: Uint8Array) => WasmModule;
    Instance: new (module: WasmModule, imports: object) => { readonly exports: Record<string, unknown> };
    /** Linear memory: page-aligned, in 64 KiB wasm pages. */
    Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer };
  };
}).WebAssembly;

/** The unit a WebAssembly.Memory grows by. */
export const WASM_PAGE_BYTES = 65536;

/**
 * A new zeroed buffer of at least `bytes` (whole 64 KiB wasm pages) that starts on a page
 * boundary, as O_DIRECT wants of the memory it writes from (a WebAssembly.Memory always does).
 */
export function pageAlignedMemory(bytes: number): Uint8Array {
  return new Uint8Array(new Wasm.Memory({ initial: Math.ceil(bytes / WASM_PAGE_BYTES) }).buffer);
}
