/**
 * One emulated x86 machine: a fresh v86 instance running the guest kernel, driven by
 * the harness through `main_loop`, with fast typed-array views on guest RAM and CPU
 * state, hypercalls, a swap disk and an optional deterministic clock.
 *
 * Run control: every hypercall that has no inline handler stops the CPU right after
 * its `out` instruction (the handler sets `in_hlt`, which makes `main_loop` return);
 * `run()` hands it to the caller, who inspects memory at leisure, writes results with
 * `complete()` and calls `run()` again. Inline handlers (frequent, cheap calls such as
 * PM_POLL and page faults) run synchronously inside the `out`.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { CONSTANTS, HYPERCALLS, HYPERCALL_NAMES, PORTS, type HypercallName } from '../abi.ts';
import { FileDisk } from './disk.ts';
import {
  EmulatorDiedError,
  GuestExceptionError,
  GuestPanicError,
  GuestTimeoutError,
  MachineError,
  ProtocolError,
} from './errors.ts';
import { jitModule, loadV86, v86WasmModule, Wasm, WASM_OFFSETS, V86_JIT_TABLE_OFFSET, type V86Cpu, type V86Emulator, type V86JitInternals } from './v86.ts';
import { readExceptionFrame } from './guest-structs.ts';
import { adviseHugePages, type HugePageAdvice } from './host-memory.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

export const MIN_RAM_BYTES = 16 * 1024 * 1024;
/** v86's largest working memory size (larger requests are clamped; 4 GiB wraps to 0). */
export const MAX_RAM_BYTES = 2 * 1024 * 1024 * 1024 - 128 * 1024;

export interface GuestImageRef {
  /** The multiboot ELF. */
  readonly elf: Uint8Array;
  /** sha256 of the ELF, hex: the build id recorded in images. */
  readonly buildId: string;
}

export interface DeterministicOptions {
  /** Guest instructions per emulated millisecond of the virtual clock. Default 1,000,000. */
  readonly instructionsPerMs?: number;
  /** Seed of the PRNG that replaces v86's random source. Default 1. */
  readonly seed?: number;
}

export interface MachineOptions {
  /** Guest RAM in bytes, MIN_RAM_BYTES .. MAX_RAM_BYTES; rounded up to 128 KiB by v86. */
  readonly ramBytes: number;
  readonly image: GuestImageRef;
  /** Multiboot command line. */
  readonly cmdline?: string;
  /** Host file attached as the primary IDE disk (the swap device). */
  readonly swapPath?: string;
  /** Virtual clock from the instruction counter and the JIT off: identical runs for identical inputs. */
  readonly deterministic?: boolean | DeterministicOptions;
  /** Record every hypercall and IRQ with its instruction count in `trace`. Default: on when deterministic. */
  readonly trace?: boolean;
  /** Called with every chunk the guest prints on COM1. */
  readonly onConsole?: (text: string) => void;
  /**
   * Touch every page of guest RAM at boot so the host commits it. v86's RAM is
   * committed lazily, and a first touch costs much more than a copy; benchmarks
   * prefault so that they measure resident RAM, as on real hardware. Default false.
   */
  readonly prefault?: boolean;
  /**
   * Ask the host for transparent huge pages behind guest RAM (madvise(MADV_HUGEPAGE),
   * as QEMU does): faster O_DIRECT image writes and first touches (src/machine/host-memory.ts,
   * docs/V86.md). What the host granted is in `Machine.hugePages`. Default true.
   */
  readonly hostHugePages?: boolean;
}

/** A hypercall at which the CPU is stopped. */
export interface Hypercall {
  readonly fn: number;
  readonly name: HypercallName | `unknown(${number})`;
  readonly ebx: number;
  readonly ecx: number;
  readonly esi: number;
  readonly edi: number;
  /** Address after the `out`. */
  readonly eip: number;
}

/** Results written back into the guest's registers. */
export interface HypercallResult {
  eax?: number;
  ebx?: number;
  ecx?: number;
  esi?: number;
  edi?: number;
}

export type InlineHandler = (call: Hypercall, m: Machine) => HypercallResult | void;

/** The page-fault hook: (error code, CR2, faulting EIP) → PF_HANDLED (retry) or anything else (not mine). */
export type PageFaultHook = (errorCode: number, cr2: number, eip: number) => number;

export interface TraceEvent {
  readonly kind: 'hypercall' | 'irq';
  /** Guest instructions retired before the event (as v86 counts them). */
  readonly instructions: number;
  readonly what: string;
  readonly args?: readonly number[];
}

export interface RunOptions {
  /** Give up (GuestTimeoutError) after this much wall time. Default 120 s. */
  readonly maxMs?: number;
  /** What the caller is waiting for, for the timeout message. */
  readonly waitingFor?: string;
}

const EFLAGS_IF = 0x200;

const REG = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 } as const;
export type RegisterName = keyof typeof REG;

/** v86's segment register slots (src/rust/cpu/global_pointers.rs: ES..GS, then TR and LDTR). */
const SREG = { es: 0, cs: 1, ss: 2, ds: 3, fs: 4, gs: 5, tr: 6, ldtr: 7 } as const;
export type SegmentRegisterName = keyof typeof SREG;

/** The real clock all machines use unless they run on their own virtual clock. */
let realMicrotick: () => number = () => performance.now();
/** v86's JS devices read time through one static function; it asks whichever machine is running. */
let activeClock: (() => number) | undefined;
let microtickPatched = false;

/** Wall time of guest running between two turns of the event loop (timers, worker messages, file I/O of the harness). */
const YIELD_EVERY_MS = 20;
const CONSOLE_KEEP = 256 * 1024;

export class Machine {
  /** Guest RAM (physical addresses). Rebuilt if v86 replaces the wasm buffer. */
  private mem8!: Uint8Array;
  private mem32!: Uint32Array;
  private regs!: Int32Array;
  private crs!: Int32Array;
  /**
   * When run() last yielded to the event loop. Kept across run() calls, so that a
   * harness driving the guest in many short run() calls (each < YIELD_EVERY_MS) still
   * lets the rest of the process run (v86's compiled code no longer needs these turns:
   * installCompiledCode(), docs/V86.md, "JIT and TLB").
   */
  private lastYield = performance.now();
  private sregs!: Uint16Array;
  private eipView!: Int32Array;
  private inHlt!: Uint8Array;
  private counter!: Uint32Array;
  private dtr!: Int32Array;
  private buffer: ArrayBuffer | undefined;
  private memOffset = 0;

  private pending: Hypercall | undefined;
  /** IF was set when the CPU was stopped at `pending` (and is masked until the next run). */
  private maskedIf = false;
  private flagsI32!: Int32Array;
  private inline = new Map<number, InlineHandler>();
  private pageFaultHandler: PageFaultHook | undefined;
  private consoleText = '';
  private consoleBytes: number[] = [];
  private lastCounter = 0;
  private idleMs = 0;
  private dead: Error | undefined;
  /** v86's INVLPG (instr32_0F01_7_mem, see docs/V86.md), looked up once. */
  private invlpg: ((linear: number) => void) | undefined;
  private readonly bootWallMs = performance.now();
  private destroyed = false;

  /** Guest instructions retired so far (64-bit safe; updated after each main_loop). */
  instructions = 0;
  /**
   * Compilations v86's JIT has started so far (0 with the JIT off; one module per hot
   * page, or a few pages). Each is compiled on the main thread, on the guest's time
   * (1–20 ms, docs/V86.md, "JIT and TLB"), and the guest runs interpreted there until
   * then, so a measurement during which this moved did not run in a settled JIT state.
   */
  jitCompiles = 0;
  /** Of those, the ones whose module v86 has installed (it starts no other while one is pending). */
  jitCompilesFinished = 0;
  /** Of those, the ones whose bytes an earlier compile of this process had made: V8 compiled nothing (jitModule). */
  jitModulesReused = 0;
  /** Modules compiled by codegen_finalize, to be installed when main_loop() returns. */
  private jitInstalls: Array<() => void> = [];
  readonly trace: TraceEvent[] = [];
  readonly ramBytes: number;
  readonly deterministic: boolean;
  /** Whether guest RAM asked for and got huge pages on the host (MachineOptions.hostHugePages). */
  readonly hugePages: HugePageAdvice;
  private readonly instructionsPerMs: number;

  private constructor(
    private emu: V86Emulator,
    private cpu: V86Cpu,
    readonly options: MachineOptions,
    private disk: FileDisk | undefined,
    private tracing: boolean,
  ) {
    this.deterministic = !!options.deterministic;
    const det = typeof options.deterministic === 'object' ? options.deterministic : {};
    this.instructionsPerMs = det.instructionsPerMs ?? 1_000_000;
    this.refreshViews();
    const invlpg = this.cpu.wm.exports.instr32_0F01_7_mem;
    if (typeof invlpg === 'function') this.invlpg = invlpg as (linear: number) => void;
    this.ramBytes = this.cpu.memory_size[0]! >>> 0;
    this.lastCounter = this.counter[0]!;
    // Before the guest and the prefault touch RAM: a 2 MiB span the host has begun with
    // 4 KiB pages keeps them (only the spans v86 loaded the kernel into, here).
    this.hugePages = options.hostHugePages === false
      ? { advisedBytes: 0, mode: 'off', reason: 'not requested' }
      : adviseHugePages(this.ram.buffer as ArrayBuffer, this.ram.byteOffset, this.ramBytes);
  }

  /** Boots the guest in a fresh v86 instance and returns with the CPU at the kernel entry (not yet run). */
  static async boot(options: MachineOptions): Promise<Machine> {
    if (!Number.isInteger(options.ramBytes) || options.ramBytes < MIN_RAM_BYTES || options.ramBytes > MAX_RAM_BYTES) {
      throw new RangeError(`RAM size ${options.ramBytes} bytes is outside ${MIN_RAM_BYTES} (16 MiB) .. ${MAX_RAM_BYTES} (2 GiB - 128 KiB)`);
    }
    const V86 = await loadV86();
    const deterministic = !!options.deterministic;
    const det = typeof options.deterministic === 'object' ? options.deterministic : {};
    let machine: Machine | undefined;
    // Until the machine exists the virtual clock stands at 0.
    const virtualNow = () => (machine ? machine.virtualNow() : 0);
    let rngState = (det.seed ?? 1) >>> 0 || 1;
    const disk = options.swapPath ? new FileDisk(options.swapPath) : undefined;
    const elf = options.image.elf;
    const emu = new V86({
      wasm_fn: async (imports) => {
        const env = imports.env;
        if (!microtickPatched) realMicrotick = env.microtick as () => number;
        if (deterministic) {
          env.microtick = virtualNow;
          env.get_rand_int = () => {
            // xorshift32: v86's only source of randomness, made reproducible.
            rngState ^= rngState << 13;
            rngState ^= rngState >>> 17;
            rngState ^= rngState << 5;
            return rngState | 0;
          };
        }
        const instance = await Wasm.instantiate(await v86WasmModule(), imports);
        return instance.exports;
      },
      memory_size: options.ramBytes,
      multiboot: { buffer: elf.buffer.slice(elf.byteOffset, elf.byteOffset + elf.byteLength) as ArrayBuffer },
      cmdline: options.cmdline ?? '',
      hda: disk,
      autostart: false,
      disable_speaker: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_jit: deterministic,
      acpi: false,
      log_level: 0,
    });
    await new Promise<void>((resolve) => emu.add_listener('emulator-ready', () => resolve()));
    const cpu = emu.v86.cpu;
    Machine.patchStaticClock(emu);
    machine = new Machine(emu, cpu, options, disk, options.trace ?? deterministic);
    machine.install();
    if (options.prefault) machine.prefault();
    return machine;
  }

  private static patchStaticClock(emu: V86Emulator): void {
    if (microtickPatched) return;
    const ctor = emu.v86.constructor;
    const original = ctor.microtick;
    realMicrotick = original;
    ctor.microtick = () => (activeClock ? activeClock() : original());
    microtickPatched = true;
  }

  private install(): void {
    const io = this.cpu.io;
    const onHypercall = (value: number) => this.onHypercall(value >>> 0);
    io.register_write(PORTS.HYPERCALL, this, onHypercall, onHypercall, onHypercall);
    const onFault = (value: number) => this.onPageFault(value >>> 0);
    io.register_write(PORTS.PAGE_FAULT, this, onFault, onFault, onFault);
    // v86 looks both up on the CPU object at every compilation: the wasm calls
    // codegen_finalize with a compiled page's module bytes, and v86's own version
    // installs the module (codegen_finalize_finished) when WebAssembly.instantiate()
    // resolves. That compile waits in V8's queue of background compile jobs behind the
    // tier-up of v86.wasm itself, 0.4 s after a process starts, while the guest runs in
    // the interpreter. Here the module is compiled and instantiated at once, on this
    // thread (a few ms; nothing when the process compiled the same bytes before), and
    // installed as soon as the running main_loop() returns: the
    // install must not happen inside the wasm call (v86's JIT state is borrowed there)
    // (docs/V86.md, "Compiled code").
    const cpu = this.cpu;
    const jit = cpu as unknown as V86JitInternals;
    cpu.codegen_finalize = (index, start, stateFlags, ptr, len) => {
      this.jitCompiles++;
      const { module, reused } = jitModule(new Uint8Array(cpu.wasm_memory.buffer, ptr >>> 0, len >>> 0));
      if (reused) this.jitModulesReused++;
      const instance = new Wasm.Instance(module, { e: jit.jit_imports });
      this.jitInstalls.push(() => {
        jit.wm.wasm_table.set(index + V86_JIT_TABLE_OFFSET, instance.exports.f);
        cpu.codegen_finalize_finished(index, start, stateFlags);
      });
    };
    const finished = cpu.codegen_finalize_finished;
    cpu.codegen_finalize_finished = (index, start, stateFlags) => {
      this.jitCompilesFinished++;
      finished.call(cpu, index, start, stateFlags);
    };
    this.emu.add_listener('serial0-output-byte', (byte) => this.onConsoleByte(byte as number));
    if (this.tracing) {
      const raise = this.cpu.device_raise_irq.bind(this.cpu);
      this.cpu.device_raise_irq = (irq: number) => {
        this.trace.push({ kind: 'irq', instructions: this.instructionsNow(), what: `irq${irq}` });
        raise(irq);
      };
    }
  }

  // ---------------------------------------------------------------- run control

  /**
   * Gives the event loop its turn now (the harness's timers, worker messages and file
   * I/O) and restarts the 20 ms count, so that no turn falls due for a while: a save calls it right before
   * its downtime starts, so the downtime does not carry the harness's event-loop turns.
   */
  async yieldNow(): Promise<void> {
    this.assertAlive();
    await yieldToEventLoop();
    this.lastYield = performance.now();
  }

  /**
   * Runs the guest until it stops at a hypercall without an inline handler, and
   * returns that hypercall; the CPU stays stopped right after the `out` until the
   * next `run()`. EXCEPTION and PANIC become errors.
   */
  async run(options: RunOptions = {}): Promise<Hypercall> {
    this.assertAlive();
    this.checkBufferIdentity();
    const maxMs = options.maxMs ?? 120_000;
    this.release();
    const start = performance.now();
    activeClock = this.deterministic ? () => this.virtualNow() : undefined;
    try {
      for (;;) {
        try {
          this.cpu.main_loop();
          this.installCompiledCode();
        } catch (err) {
          throw this.die(new EmulatorDiedError(err, this.eip));
        }
        this.accountInstructions();
        if (this.dead) throw this.dead;
        const now = performance.now();
        if (now - this.lastYield >= YIELD_EVERY_MS) {
          // Also when a hypercall just stopped the CPU: a harness that drives the guest
          // in many short runs must still give the event loop its turns (see lastYield).
          activeClock = undefined;
          await yieldToEventLoop();
          activeClock = this.deterministic ? () => this.virtualNow() : undefined;
          this.lastYield = performance.now();
          if (this.dead) throw this.dead;
        }
        if (this.pending) break;
        if (this.inHltView()[0] && this.deterministic) {
          // The guest halted waiting for an interrupt: let virtual time pass to the next timer.
          this.idleMs += 1;
        }
        if (now - start > maxMs) {
          throw this.die(new GuestTimeoutError(options.waitingFor ?? 'a hypercall', `${maxMs} ms of wall time`));
        }
      }
    } finally {
      activeClock = undefined;
    }
    const call = this.pending as Hypercall | undefined;
    if (!call) throw new ProtocolError('run loop ended without a hypercall');
    if (this.tracing) this.trace.push({ kind: 'hypercall', instructions: this.instructions, what: call.name, args: [call.ebx, call.ecx, call.esi, call.edi] });
    if (call.fn === HYPERCALLS.EXCEPTION.value) {
      throw this.die(new GuestExceptionError(readExceptionFrame(this, call.ebx)));
    }
    if (call.fn === HYPERCALLS.PANIC.value) {
      throw this.die(new GuestPanicError(this.readString(call.ebx, Math.min(call.ecx, 1024))));
    }
    return call;
  }

  /**
   * Runs until a hypercall named in `expected` arrives, answering the others with
   * `otherwise` (default: a ProtocolError).
   */
  async runUntil(expected: readonly HypercallName[], options: RunOptions & { otherwise?: (call: Hypercall) => HypercallResult | 'stop' } = {}): Promise<Hypercall> {
    for (;;) {
      const call = await this.run({ ...options, waitingFor: options.waitingFor ?? expected.join(' or ') });
      if ((expected as readonly string[]).includes(call.name)) return call;
      if (!options.otherwise) throw this.die(new ProtocolError(`expected hypercall ${expected.join(' or ')}, the guest made ${call.name} at EIP ${hex(call.eip)}`));
      const result = options.otherwise(call);
      if (result === 'stop') return call;
      this.complete(result);
    }
  }

  /** Writes hypercall results into the guest's registers (CPU stopped at a hypercall). */
  complete(result: HypercallResult = {}): void {
    const r = this.regView();
    if (result.eax !== undefined) r[REG.eax] = result.eax | 0;
    if (result.ebx !== undefined) r[REG.ebx] = result.ebx | 0;
    if (result.ecx !== undefined) r[REG.ecx] = result.ecx | 0;
    if (result.esi !== undefined) r[REG.esi] = result.esi | 0;
    if (result.edi !== undefined) r[REG.edi] = result.edi | 0;
  }

  /** Handles a hypercall synchronously inside the `out`, without stopping the CPU. */
  setInlineHandler(name: HypercallName, handler: InlineHandler | undefined): void {
    const fn = HYPERCALLS[name].value;
    if (handler) this.inline.set(fn, handler);
    else this.inline.delete(fn);
  }

  /**
   * Installs the page-fault handler: called inside the guest's #PF stub with the
   * error code, CR2 and EIP; returns PF_HANDLED (retry) or PF_NOT_MINE. Returns the
   * handler it replaces (so that a layer can put it back when it is uninstalled).
   */
  setPageFaultHandler(handler: PageFaultHook | undefined): PageFaultHook | undefined {
    const previous = this.pageFaultHandler;
    this.pageFaultHandler = handler;
    return previous;
  }

  /**
   * Stops the CPU right after the current `out` (also from inside an inline handler):
   * the current `run()` returns this call.
   *
   * v86 has no "stop" but the HLT state (`in_hlt`), and `main_loop` delivers a pending
   * IRQ to a halted CPU with IF set and runs on in the same call. So IF is masked while
   * the CPU is stopped and restored by the next `run()`: a pending IRQ then arrives
   * after the `out`, as it would on real hardware.
   */
  stopAt(call: Hypercall): void {
    if (this.pending) {
      throw this.die(new ProtocolError(`hypercall ${call.name} at ${hex(call.eip)} arrived while ${this.pending.name} was still pending`));
    }
    this.pending = call;
    this.haltCpu();
  }

  /**
   * Ends the run with `error`, also from inside an inline or page-fault handler: the
   * machine is marked dead with it and the CPU stops right after the current `out`
   * (as stopAt does, IF masked so that no pending IRQ runs the guest on), so the
   * pending `run()` throws `error` as soon as `main_loop` returns; every later
   * `run()` throws it too. The first error wins. The emulator still has to be
   * powered off.
   */
  abort(error: Error): void {
    if (this.destroyed || this.dead) return;
    if (error instanceof MachineError && !error.consoleTail) error.consoleTail = this.consoleTail();
    this.dead = error;
    if (!this.pending) this.haltCpu();
  }

  /** HLT state with IF masked (see stopAt); undone by release(). */
  private haltCpu(): void {
    const flags = this.flagsView();
    this.maskedIf = (flags[0]! & EFLAGS_IF) !== 0;
    if (this.maskedIf) flags[0] = flags[0]! & ~EFLAGS_IF;
    this.inHltView()[0] = 1;
  }

  /**
   * Undoes stopAt: IF back as it was, out of the HLT state. An IRQ that became pending
   * while the CPU was stopped (a timer, or one the harness pulsed) is delivered right
   * here, after the `out`, as on real hardware: v86 itself looks for pending IRQs only
   * at STI, POPF, IRET, device IRQs and its timer slices, so the guest could otherwise
   * run on for a while with the interrupt waiting.
   */
  private release(): void {
    const unmasked = this.maskedIf;
    if (unmasked) this.flagsView()[0] = this.flagsView()[0]! | EFLAGS_IF;
    this.maskedIf = false;
    this.pending = undefined;
    this.inHltView()[0] = 0;
    if (unmasked) this.cpu.handle_irqs();
  }

  private onHypercall(fn: number): void {
    const r = this.regView();
    const call: Hypercall = {
      fn,
      name: HYPERCALL_NAMES.get(fn) ?? `unknown(${fn})`,
      ebx: r[REG.ebx]! >>> 0,
      ecx: r[REG.ecx]! >>> 0,
      esi: r[REG.esi]! >>> 0,
      edi: r[REG.edi]! >>> 0,
      eip: this.eipView[0]! >>> 0,
    };
    const handler = this.inline.get(fn);
    if (handler) {
      const result = handler(call, this);
      if (result) this.complete(result);
      return;
    }
    this.stopAt(call);
  }

  private onPageFault(errorCode: number): void {
    const r = this.regView();
    const cr2 = this.crs[2]! >>> 0;
    const eip = r[REG.ebx]! >>> 0;
    const decision = this.pageFaultHandler ? this.pageFaultHandler(errorCode, cr2, eip) : CONSTANTS.PF_NOT_MINE.value;
    r[REG.eax] = decision;
  }

  /** Writes one byte of every page back to itself, so the host commits all of guest RAM. */
  private prefault(): void {
    const ram = this.ram;
    for (let a = 0; a < ram.length; a += PAGE_SIZE) ram[a] = ram[a]!;
  }

  /** v86's own whole-emulator snapshot (for comparison in benchmarks); the CPU must be stopped. */
  async v86SaveState(): Promise<ArrayBuffer> {
    this.assertAlive();
    return this.emu.save_state();
  }

  /** Loads a snapshot made by v86SaveState into this emulator (same RAM size and devices). */
  async v86RestoreState(state: ArrayBuffer): Promise<void> {
    this.assertAlive();
    await this.emu.restore_state(state);
    this.refreshViews();
  }

  /** Destroys the emulator and frees its memory: power off. Safe to call twice. */
  async powerOff(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await this.emu.destroy();
    } catch {
      // A dead emulator may fail to tear down its devices; its memory goes with the references.
    }
    this.disk?.close();
    this.inline.clear();
    this.pageFaultHandler = undefined;
    // Drop every view on the wasm memory so it can be collected.
    this.mem8 = new Uint8Array(0);
    this.mem32 = new Uint32Array(0);
    this.buffer = undefined;
    (this as unknown as { emu: unknown }).emu = undefined;
    (this as unknown as { cpu: unknown }).cpu = undefined;
  }

  get alive(): boolean {
    return !this.destroyed && !this.dead;
  }

  // ---------------------------------------------------------------- memory

  /** Guest RAM as bytes (physical addresses). Do not keep it across `run()`. */
  get ram(): Uint8Array {
    this.checkBuffer();
    return this.mem8;
  }

  /** Guest RAM as little-endian u32 words (index = address / 4). */
  get ram32(): Uint32Array {
    this.checkBuffer();
    return this.mem32;
  }

  readU32(addr: number): number {
    this.checkRange(addr, 4);
    if ((addr & 3) === 0) return this.ram32[addr >>> 2]!;
    const m = this.ram;
    return (m[addr]! | (m[addr + 1]! << 8) | (m[addr + 2]! << 16) | (m[addr + 3]! << 24)) >>> 0;
  }

  writeU32(addr: number, value: number): void {
    this.checkRange(addr, 4);
    if ((addr & 3) === 0) this.ram32[addr >>> 2] = value >>> 0;
    else new DataView(this.ram.buffer, this.ram.byteOffset + addr, 4).setUint32(0, value >>> 0, true);
    this.cpu.jit_dirty_cache(addr, addr + 4);
  }

  /** A view (not a copy) of guest bytes [addr, addr + len). */
  view(addr: number, len: number): Uint8Array {
    this.checkRange(addr, len);
    return this.ram.subarray(addr, addr + len);
  }

  /** Copies bytes into guest memory and invalidates JIT code compiled from them. */
  write(addr: number, bytes: Uint8Array, options: { jit?: 'dirty' | 'none' } = {}): void {
    this.checkRange(addr, bytes.length);
    this.ram.set(bytes, addr);
    if (options.jit !== 'none') this.cpu.jit_dirty_cache(addr, addr + bytes.length);
  }

  /** A NUL-terminated or length-limited string from guest memory. */
  readString(addr: number, maxLen: number): string {
    const bytes = this.view(addr, Math.min(maxLen, this.ramBytes - addr));
    const end = bytes.indexOf(0);
    return Buffer.from(end >= 0 ? bytes.subarray(0, end) : bytes).toString('latin1');
  }

  /**
   * One edge on ISA interrupt line `irq` (0-15) at the emulated 8259 PICs: raised and
   * lowered at once. The PIC latches an edge in its request register, so the guest takes
   * the interrupt as soon as its line is unmasked and interrupts are on.
   */
  pulseIrq(irq: number): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`pulseIrq: IRQ ${irq} is not 0-15`);
    this.assertAlive();
    this.cpu.device_raise_irq(irq);
    this.cpu.device_lower_irq(irq);
  }

  /** Drops all compiled code (after writing much guest memory at once). */
  clearJitCache(): void {
    this.cpu.jit_clear_cache();
  }

  /** Flushes the whole TLB, global entries included. */
  flushTlb(): void {
    this.cpu.full_clear_tlb();
  }

  /**
   * Drops the TLB entry of the 4 KiB page holding `linear` (the guest's INVLPG,
   * through v86's exported instruction handler; the guest runs in ring 0, which the
   * handler checks). Cheaper than flushTlb() for a few pages: the other entries stay.
   */
  invalidatePage(linear: number): void {
    if (this.invlpg) this.invlpg(linear | 0);
    else this.cpu.full_clear_tlb();
  }

  /** Whether invalidatePage() is a real per-page invalidation (false: it flushes everything). */
  get hasInvalidatePage(): boolean {
    return this.invlpg !== undefined;
  }

  // ---------------------------------------------------------------- CPU state

  reg(name: RegisterName): number {
    return this.regView()[REG[name]]! >>> 0;
  }

  setReg(name: RegisterName, value: number): void {
    this.regView()[REG[name]] = value | 0;
  }

  cr(n: 0 | 2 | 3 | 4): number {
    this.checkBuffer();
    return this.crs[n]! >>> 0;
  }

  sreg(name: SegmentRegisterName): number {
    this.checkBuffer();
    return this.sregs[SREG[name]]!;
  }

  get eip(): number {
    if (!this.cpu) return 0;
    this.checkBuffer();
    return this.eipView[0]! >>> 0;
  }

  /** EFLAGS as the guest has it (IF included even while the harness holds the CPU stopped). */
  get eflags(): number {
    return (this.cpu.get_eflags() | (this.maskedIf ? EFLAGS_IF : 0)) >>> 0;
  }

  /** GDTR and IDTR as the CPU holds them. */
  descriptorTables(): { gdtBase: number; gdtLimit: number; idtBase: number; idtLimit: number } {
    this.checkBuffer();
    const d = this.dtr; // idtr_size, idtr_offset, gdtr_size, gdtr_offset
    return { idtLimit: d[0]! >>> 0, idtBase: d[1]! >>> 0, gdtLimit: d[2]! >>> 0, gdtBase: d[3]! >>> 0 };
  }

  /** Everything printed on COM1 so far (the last 256 KiB). */
  get console(): string {
    this.flushConsole();
    return this.consoleText;
  }

  consoleTail(lines = 40): string {
    return this.console.split('\n').slice(-lines).join('\n');
  }

  /** Disk traffic the guest itself caused through the IDE controller. */
  get diskStats(): { bytesRead: number; bytesWritten: number } {
    return this.disk ? { ...this.disk.stats } : { bytesRead: 0, bytesWritten: 0 };
  }

  // ---------------------------------------------------------------- internals

  private virtualNow(): number {
    return this.instructionsNow() / this.instructionsPerMs + this.idleMs;
  }

  /**
   * The guest clock in milliseconds since boot: the virtual clock in deterministic
   * mode (so two runs give the same readings at the same instruction), else host
   * wall time since the machine was made. Usable inside handlers.
   */
  guestTimeMs(): number {
    return this.deterministic ? this.virtualNow() : performance.now() - this.bootWallMs;
  }

  /**
   * Guest instructions retired so far, read live from v86's counter: usable inside
   * inline and page-fault handlers, where `instructions` lags. Exact and reproducible
   * in deterministic mode (JIT off: identical counts at every fault in identical runs);
   * with the JIT on it is as current as v86 keeps its counter (not checked for
   * exactness).
   */
  instructionsNow(): number {
    const c = this.counter[0]!;
    return this.instructions + ((c - this.lastCounter) >>> 0);
  }

  /** Installs what codegen_finalize compiled during the last main_loop(). */
  private installCompiledCode(): void {
    for (let i = 0; i < this.jitInstalls.length; i++) this.jitInstalls[i]!();
    this.jitInstalls.length = 0;
  }

  private accountInstructions(): void {
    const c = this.counter[0]!;
    this.instructions += (c - this.lastCounter) >>> 0;
    this.lastCounter = c;
  }

  private onConsoleByte(byte: number): void {
    this.consoleBytes.push(byte);
    if (byte === 10) {
      const line = this.flushConsole();
      if (line) this.options.onConsole?.(line);
    }
  }

  private flushConsole(): string {
    if (this.consoleBytes.length === 0) return '';
    const text = Buffer.from(this.consoleBytes).toString('latin1');
    this.consoleBytes = [];
    this.consoleText += text;
    if (this.consoleText.length > CONSOLE_KEEP) this.consoleText = this.consoleText.slice(-CONSOLE_KEEP);
    return text;
  }

  private die(err: MachineError): MachineError {
    err.consoleTail = this.consoleTail();
    this.dead = err;
    return err;
  }

  private assertAlive(): void {
    if (this.destroyed) throw new MachineError('machine is powered off');
    if (this.dead) throw this.dead;
  }

  private checkRange(addr: number, len: number): void {
    if (addr < 0 || len < 0 || addr + len > this.ramBytes) {
      throw new RangeError(`guest physical access [${hex(addr)}, ${hex((addr + len))}) outside RAM (${this.ramBytes} bytes)`);
    }
  }

  /**
   * Rebuilds the views if v86's wasm memory was replaced. v86's memory is not shared,
   * so growing it detaches the old buffer, which empties every view on it: checking a
   * view's length is enough here and much cheaper than the `buffer` getter (this runs
   * on every access, page-fault handlers included). run() does the full identity check.
   */
  private checkBuffer(): void {
    if (this.regs.length === 0 && this.cpu) this.refreshViews();
  }

  private checkBufferIdentity(): void {
    if (this.cpu && this.cpu.wasm_memory.buffer !== this.buffer) this.refreshViews();
  }

  private regView(): Int32Array {
    this.checkBuffer();
    return this.regs;
  }

  private flagsView(): Int32Array {
    this.checkBuffer();
    return this.flagsI32;
  }

  private inHltView(): Uint8Array {
    this.checkBuffer();
    return this.inHlt;
  }

  private refreshViews(): void {
    const buffer = this.cpu.wasm_memory.buffer as ArrayBuffer;
    this.buffer = buffer;
    this.memOffset = this.cpu.mem8.byteOffset;
    const size = this.cpu.memory_size[0]! >>> 0;
    this.mem8 = new Uint8Array(buffer, this.memOffset, size);
    this.mem32 = new Uint32Array(buffer, this.memOffset, size >>> 2);
    this.regs = new Int32Array(buffer, WASM_OFFSETS.reg32, 8);
    this.crs = new Int32Array(buffer, WASM_OFFSETS.cr, 8);
    this.sregs = new Uint16Array(buffer, WASM_OFFSETS.sreg, 8);
    this.eipView = new Int32Array(buffer, WASM_OFFSETS.instruction_pointer, 1);
    this.inHlt = new Uint8Array(buffer, WASM_OFFSETS.in_hlt, 1);
    this.flagsI32 = new Int32Array(buffer, WASM_OFFSETS.flags, 1);
    this.counter = new Uint32Array(buffer, WASM_OFFSETS.instruction_counter, 1);
    this.dtr = new Int32Array(buffer, WASM_OFFSETS.idtr_size, 4);
  }
}

/** For tests: the process-wide real clock v86 uses when no machine runs on a virtual one. */
export function realClock(): number {
  return realMicrotick();
}
