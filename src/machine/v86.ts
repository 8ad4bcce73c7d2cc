/**
 * The parts of v86 that hiberlab uses, typed. `v86.d.ts` types the public starter API
 * but not `emu.v86.cpu`; everything below was read off `build/libv86-debug.mjs`
 * (v86 0.5.462) and is written down in docs/V86.md.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { HiberlabError } from '../errors.ts';
import { Wasm, type WasmModule } from '../wasm.ts';

/** Byte offsets of CPU state inside the wasm memory (see `CPU(...)` in libv86-debug.mjs). */
export const WASM_OFFSETS = {
  reg32: 64, // 8 × i32: EAX ECX EDX EBX ESP EBP ESI EDI
  flags: 120,
  instruction_pointer: 556, // linear EIP (CS base + EIP)
  idtr_size: 564,
  idtr_offset: 568,
  gdtr_size: 572,
  gdtr_offset: 576,
  cr: 580, // 8 × i32: CR0 .. CR7
  in_hlt: 616,
  instruction_counter: 664,
  sreg: 668, // 8 × u16: ES CS SS DS FS GS
} as const;

export interface V86Io {
  register_write(port: number, device: object, w8?: (v: number) => void, w16?: (v: number) => void, w32?: (v: number) => void): void;
  register_read(port: number, device: object, r8?: () => number, r16?: () => number, r32?: () => number): void;
}

export interface V86Cpu {
  wasm_memory: { buffer: ArrayBuffer | SharedArrayBuffer };
  mem8: { byteOffset: number; length: number };
  memory_size: { [i: number]: number };
  io: V86Io;
  main_loop(): number;
  get_eflags(): number;
  full_clear_tlb(): void;
  clear_tlb(): void;
  jit_clear_cache(): void;
  jit_dirty_cache(start: number, end: number): void;
  device_raise_irq(irq: number): void;
  device_lower_irq(irq: number): void;
  /** Delivers the highest pending PIC interrupt now if IF is set (v86 calls it after STI, POPF, IRET and device IRQs). */
  handle_irqs(): void;
  set_jit_config(index: number, value: number): void;
  /**
   * Called by the wasm (JIT) with a compiled page's module bytes; v86's own instantiates
   * them asynchronously and installs the module when the promise resolves; Machine
   * replaces it (docs/V86.md).
   */
  codegen_finalize(wasmTableIndex: number, start: number, stateFlags: number, ptr: number, len: number): void;
  /** The wasm export that installs a compiled module (v86 calls it from codegen_finalize's promise callback). */
  codegen_finalize_finished(wasmTableIndex: number, start: number, stateFlags: number): void;
  /** The wasm instance; `exports` holds every exported CPU function (see docs/V86.md). */
  wm: { exports: Record<string, unknown> };
}

/** Where v86 keeps its JIT's modules: its wasm table, the imports each module gets. */
export interface V86JitInternals {
  jit_imports: object;
  wm: { wasm_table: { set(index: number, f: unknown): void } };
}

/** v86 enters compiled module i at wasm table index i + this (WASM_TABLE_OFFSET in src/cpu.js). */
export const V86_JIT_TABLE_OFFSET = 1024;

export interface V86Emulator {
  v86: { cpu: V86Cpu; constructor: { microtick: () => number } };
  add_listener(event: string, fn: (data: unknown) => void): void;
  remove_listener(event: string, fn: (data: unknown) => void): void;
  destroy(): Promise<void>;
  stop(): Promise<void>;
  save_state(): Promise<ArrayBuffer>;
  restore_state(state: ArrayBuffer): Promise<void>;
}

export interface V86Options {
  wasm_path?: string;
  wasm_fn?: (imports: { env: Record<string, unknown> }) => Promise<Record<string, unknown>>;
  memory_size: number;
  vga_memory_size?: number;
  multiboot?: { buffer: ArrayBuffer };
  cmdline?: string;
  hda?: unknown;
  autostart: boolean;
  disable_speaker?: boolean;
  disable_keyboard?: boolean;
  disable_mouse?: boolean;
  disable_jit?: boolean;
  acpi?: boolean;
  log_level?: number;
}

export type V86Constructor = new (options: V86Options) => V86Emulator;

const require = createRequire(import.meta.url);

export { Wasm, type WasmModule };

/** Directory of the v86 npm package's build (libv86.mjs, v86.wasm). */
export function v86BuildDir(): string {
  return require.resolve('v86/build/libv86.mjs').replace(/libv86\.mjs$/, '');
}

let cachedWasm: Uint8Array | undefined;

/** The v86 wasm bytes, read once per process. */
export function v86WasmBytes(): Uint8Array {
  cachedWasm ??= readFileSync(v86BuildDir() + 'v86.wasm');
  return cachedWasm;
}

let cachedModule: Promise<WasmModule> | undefined;

/**
 * v86's wasm module, compiled once per process and shared by every machine the process
 * boots (each gets its own instance and memory), with V8's lazy compilation of wasm
 * turned off for the whole process first (see useEagerWasmCompilation).
 */
export function v86WasmModule(): Promise<WasmModule> {
  cachedModule ??= (useEagerWasmCompilation(), Wasm.compile(v86WasmBytes()));
  return cachedModule;
}

/** The JIT modules a process keeps for reuse, by the SHA-1 of their bytes (least recently used first). */
const jitModules = new Map<string, { module: WasmModule; bytes: number }>();
let jitModuleBytes = 0;
/** At most this many bytes of module code (as v86 made it) are kept; the oldest go first. */
const JIT_MODULE_CACHE_BYTES = 64 << 20;
const jitModuleTally = { compiled: 0, reused: 0 };

/** How many of v86's JIT modules this process has compiled, and how many it took from the ones compiled before. */
export function jitModuleCounts(): { readonly compiled: number; readonly reused: number } {
  return { ...jitModuleTally };
}

/**
 * The compiled module for one of v86's JIT modules, compiled on this thread, or the one
 * compiled before from the same bytes in this process: a module is stateless (each
 * machine instantiates it with its own imports), and a guest booted again compiles the
 * same pages into the same bytes, so later machines of a process (a resume's boot, the
 * next cycle of a test file) skip V8's compile.
 */
export function jitModule(bytes: Uint8Array): { readonly module: WasmModule; readonly reused: boolean } {
  const key = createHash('sha1').update(bytes).digest('base64');
  const kept = jitModules.get(key);
  if (kept) {
    jitModules.delete(key);
    jitModules.set(key, kept);
    jitModuleTally.reused++;
    return { module: kept.module, reused: true };
  }
  const module = new Wasm.Module(bytes);
  jitModuleTally.compiled++;
  jitModules.set(key, { module, bytes: bytes.length });
  jitModuleBytes += bytes.length;
  for (const [k, v] of jitModules) {
    if (jitModuleBytes <= JIT_MODULE_CACHE_BYTES) break;
    jitModules.delete(k);
    jitModuleBytes -= v.bytes;
  }
  return { module, reused: false };
}

/** What useEagerWasmCompilation did: set the flag, left it as node's flags say, or nothing yet. */
export let wasmCompilation: 'eager (set by hiberlab)' | 'as node was told' | 'not yet set' = 'not yet set';
/** Which of V8's wasm compilers the process uses: as chosen here (chooseWasmTiers), as node's flags say, or nothing yet. */
export let wasmTiers: 'liftoff only (set by hiberlab)' | "tier-up (V8's default)" | 'as node was told' | 'not yet set' = 'not yet set';

/**
 * V8's wasm compilers for a process: `liftoff-only` (Liftoff's quick code and nothing
 * else) or `tier-up` (V8's default: Liftoff first, then TurboFan on background threads
 * for the functions that run hot).
 */
export const WASM_TIERS = ['liftoff-only', 'tier-up'] as const;
export type WasmTiers = (typeof WASM_TIERS)[number];
let chosenTiers: WasmTiers = 'liftoff-only';

/**
 * Chooses V8's wasm compilers for this process, before its first machine (V8 fixes them
 * for a module when it compiles it, and v86.wasm is compiled once per process). The
 * default, `liftoff-only`, makes a short process fast: a CI cycle is over before
 * TurboFan's background work on v86.wasm would pay off. `tier-up` makes a long one
 * fast where v86.wasm's own functions are hot: the fault path (#PF delivery, page walks,
 * `iret`) makes 1.2–2.3× as many round trips a second (docs/BENCHMARKS.md, "Fault round
 * trips"); `hiberlab faults` chooses it. Node's own flags about the tiers win over both. Choosing
 * again after the first machine is refused unless it is the choice already in effect.
 */
export function chooseWasmTiers(tiers: WasmTiers): void {
  if (tiers === chosenTiers) return;
  if (wasmTiers !== 'not yet set') {
    throw new HiberlabError('WASM_TIERS_FIXED', `V8's wasm compilers are chosen once per process, before its first machine: this process already compiled v86 with ${wasmTiers}, so ${tiers} cannot be chosen now`, { chosen: chosenTiers, inEffect: wasmTiers, asked: tiers });
  }
  chosenTiers = tiers;
}

/**
 * Sets two V8 flags for this process before v86.wasm is compiled, each unless node was
 * started with a flag of its own about it (then the user's choice stands):
 *
 * `--no-wasm-lazy-compilation`. V8 compiles a wasm function lazily by default: on its
 * first call, on the thread that calls it, inside `main_loop`, while the guest stands
 * still: a hundred guest instructions (the hibernation request) or the FREEZE command
 * could then take longer than the whole freeze. Compiled eagerly, v86.wasm is compiled
 * before the first boot, and each module of v86's JIT when Machine compiles it.
 *
 * `--liftoff-only`, unless `tier-up` was chosen (chooseWasmTiers). V8 compiles wasm with
 * Liftoff, then again with TurboFan on its background threads once a function is hot.
 * v86.wasm is 2 MiB; its tier-up keeps the second core busy for the first seconds of a
 * process, which is all a CI cycle lasts: a whole `hiberlab cycle --ram 128M` took 2.2 s
 * with it and 1.3 s without (docs/BENCHMARKS.md, notes). The settings change when and
 * how wasm is compiled, never what it does.
 */
export function useEagerWasmCompilation(): void {
  if (wasmCompilation !== 'not yet set') return;
  const told = nodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (nodeWasToldHowToCompileWasm(told)) wasmCompilation = 'as node was told';
  else {
    setFlagsFromString('--no-wasm-lazy-compilation');
    wasmCompilation = 'eager (set by hiberlab)';
  }
  if (nodeWasToldWasmTiers(told)) wasmTiers = 'as node was told';
  else if (chosenTiers === 'tier-up') wasmTiers = "tier-up (V8's default)";
  else {
    setFlagsFromString('--liftoff-only');
    wasmTiers = 'liftoff only (set by hiberlab)';
  }
}

/** Node's flags: its argv before the script, then NODE_OPTIONS. */
const nodeFlags = (execArgv: readonly string[], nodeOptions = '') => [...execArgv, ...nodeOptions.split(/\s+/)];

/** Whether node's flags (its argv before the script, and NODE_OPTIONS) set V8's lazy wasm compilation either way. */
export function nodeWasToldHowToCompileWasm(execArgv: readonly string[], nodeOptions = ''): boolean {
  return nodeFlags(execArgv, nodeOptions).some((f) => /^--(no-)?wasm[-_]lazy[-_]compilation$/.test(f));
}

/** Whether node's flags choose V8's wasm compilers (Liftoff, TurboFan, tier-up) either way. */
export function nodeWasToldWasmTiers(execArgv: readonly string[], nodeOptions = ''): boolean {
  return nodeFlags(execArgv, nodeOptions).some((f) => /^--(no-)?(liftoff|liftoff[-_]only|wasm[-_]tier[-_]up|wasm[-_]dynamic[-_]tiering)$/.test(f));
}

let cachedCtor: V86Constructor | undefined;

/** The V86 constructor (imported lazily so that pure modules don't load the emulator). */
export async function loadV86(): Promise<V86Constructor> {
  if (!cachedCtor) {
    const mod = (await import('v86')) as unknown as { V86: V86Constructor; default?: { V86: V86Constructor } };
    cachedCtor = mod.V86 ?? mod.default?.V86;
    if (!cachedCtor) throw new Error('v86: the package exports no V86 constructor');
  }
  return cachedCtor;
}
