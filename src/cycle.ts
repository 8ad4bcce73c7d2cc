/**
 * A hibernate cycle, end to end: boot → warm-up → save (the image goes to the swap
 * device, the oracle is taken at the atomic point) → power off → a fresh boot kernel
 * → validate the image → restore → trampoline → verify against the oracle → the
 * tasks verify their own data.
 *
 * `hibernate()` and `resume()` are the two halves (they may run in different
 * processes: then the pages are checked against the image's checksums instead of the
 * oracle); `runCycle()` runs both and judges.
 */
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import tmp from 'tmp';
import { CONSTANTS } from './abi.ts';
import type { GivenOptions } from './declarations.ts';
import { errorCode, HiberlabError } from './errors.ts';
import { beginImageValidation, CrcThread, ImageError, SwapDevice, imageRamBytes, resetSignature, validateImageAsync, type ImageValidation, type ValidatedImage } from './image/index.ts';
import { METADATA_BYTES_PER_COMPRESSED_PAGE, METADATA_OFFSET, roundUpToPage } from './image/layout.ts';
import { MachineError } from './machine/errors.ts';
import { Guest, type VerifyReport } from './machine/guest.ts';
import { kernelImage, loadGuestImage } from './machine/guest-image.ts';
import type { GuestImageRef } from './machine/machine.ts';
import { consoleProgress, silentProgress, type Progress } from './metrics/progress.ts';
import { PhaseTimer, round1 } from './metrics/timer.ts';
import type { Oracle } from './oracle/oracle.ts';
import { judge, Verifier, type OracleVerdict } from './oracle/verdict.ts';
import { runRestore } from './restore/run.ts';
import { RestoreRefusedError, type RestoreReport, type RestoreStrategy } from './restore/strategy.ts';
import { runSave } from './save/session.ts';
import type { SaveReport, SaveStrategy } from './save/strategy.ts';
import { restoreStrategy, saveStrategy } from './strategies.ts';
import { formatWorkload, parseWorkloadSpec } from './machine/workload.ts';
import { wasmTiers } from './machine/v86.ts';
import { PAGE_SIZE } from './units.ts';

export const DEFAULT_RAM_BYTES = 64 * 1024 * 1024;
export const DEFAULT_WORKLOAD = 'churn:4M@2000,stream:8M,cache:8M';
export const DEFAULT_WARMUP_MS = 200;

export interface MachineChoice {
  /** Guest RAM in bytes. Default 64 MiB. */
  readonly ramBytes?: number;
  /** The guest image; default images/guest.elf. */
  readonly image?: GuestImageRef;
  /** A kernel of one's own to boot instead: the path of a multiboot ELF that implements the hypercall ABI (docs/ABI.md). */
  readonly kernel?: string;
  /** Virtual clock and JIT off. Default false. */
  readonly deterministic?: boolean;
  /** Map RAM with 4 MiB pages. Default false. */
  readonly largePages?: boolean;
  /** Progress lines on stderr for phases over a second. Default: silent. */
  readonly progress?: Progress | boolean;
  /** Every console line of the guest. */
  readonly onConsole?: (text: string) => void;
  /** Touch all guest RAM at boot so the host commits it (benchmarks). Default false. */
  readonly prefault?: boolean;
  /** Ask the host for transparent huge pages behind guest RAM (MachineOptions.hostHugePages). Default true. */
  readonly hostHugePages?: boolean;
  /** Boot both kernels with a reserved region of this many bytes (reserve=; the `reserved` restore needs it). Default: none. */
  readonly reserveBytes?: number;
  /** Boot both kernels with only this much RAM mapped for good (lowmem=); the frames above are highmem and hold the cache. Default: all RAM. */
  readonly lowmemBytes?: number;
}

export interface HibernateOptions extends MachineChoice {
  /** Workload spec (see parseWorkloadSpec). Default DEFAULT_WORKLOAD ("idle" with a kernel of one's own). */
  readonly workload?: string;
  /** Seed of the workloads. Default 1. */
  readonly seed?: number;
  /** Save strategy: a registered name (default "swsusp") or a strategy object. */
  readonly save?: string | SaveStrategy<any, any>;
  /** The save strategy's options, by the names it declares (checked against the declaration). */
  readonly saveOptions?: GivenOptions;
  /** Swap device file; created if missing. Default: a temporary file. */
  readonly imagePath?: string;
  /**
   * Whether a swap device this call creates gets all its blocks written first, as Linux
   * wants of a swap file (docs/IMAGE-FORMAT.md). Default: yes when imagePath is given;
   * a temporary device that lives for one cycle stays sparse.
   */
  readonly allocateDevice?: boolean;
  /** Guest milliseconds the workloads run after READY before the hibernation. Default 200. */
  readonly warmupMs?: number;
  /** Hibernate this running guest (e.g. one resumed earlier) instead of booting a new one. */
  readonly guest?: Guest;
  /** Capture the oracle at the atomic point (a copy of all RAM). Default true. */
  readonly oracle?: boolean;
}

export interface HibernateResult {
  readonly imagePath: string;
  readonly buildId: string;
  readonly ramBytes: number;
  readonly workload: string;
  readonly seed: number;
  readonly save: SaveReport;
  /** Verification reports the resume must bring: one per workload task (churn, stream), one for the cache. */
  readonly verifyReportsExpected: number;
  /** Taken at the atomic point (unless options.oracle was false). */
  readonly oracle?: Oracle;
  /** Frames that faulted while the image was written (bitmap words), for saves that write while running. */
  readonly faulted?: Uint32Array;
  readonly phasesMs: Readonly<Record<string, number>>;
  /** Guest console output. */
  readonly console: string;
  /** Hypercall and IRQ trace (deterministic mode). */
  readonly trace: ReadonlyArray<{ kind: string; instructions: number; what: string }>;
}

export interface ResumeOptions extends MachineChoice {
  readonly imagePath: string;
  // ramBytes (MachineChoice): default the RAM size the image records (64 MiB without an image).
  /**
   * The boot kernel's command line, as the hibernated kernel's: its workloads and seed. A
   * boot kernel creates only what a kernel creates before RESUME_CHECK (cache:SIZE@boot);
   * the rest only if it boots normally. Default: none.
   */
  readonly workload?: string;
  readonly seed?: number;
  /** Restore strategy: a registered name (default "bitmap-pbe") or a strategy object. */
  readonly restore?: string | RestoreStrategy<any, any, any>;
  /** The restore strategy's options, by the names it declares. */
  readonly restoreOptions?: GivenOptions;
  /** The oracle from hibernate(); without it saved pages are checked against the image. */
  readonly oracle?: Oracle;
  /** Reports the workloads must bring (from hibernate()); default: what the resumed kernel has. */
  readonly verifyReportsExpected?: number;
  /** Refusals: also prove that guest memory was not touched (copies RAM: tests only). */
  readonly proveUntouched?: boolean;
  /** Keep the resumed guest running and return it (for a lineage of cycles); the caller powers it off. */
  readonly keepRunning?: boolean;
  /**
   * Check the image's page CRCs on two threads (a CRC thread started before the boot,
   * like Linux's crc32 thread in swap.c). Default: true. The outcome is the same either way.
   * A CrcThread already started may be given instead (runCycle starts one before the
   * save, so that it is up when the boot begins); it is left open for its owner to close.
   */
  readonly crcThread?: boolean | CrcThread;
}

export type ResumeStatus = 'resumed' | 'no-image' | 'refused';

export interface ResumeResult {
  readonly status: ResumeStatus;
  /** Why the image was refused (status "refused") or not found ("no-image"), or why the resumed kernel died. */
  readonly reason?: string;
  readonly errorCode?: string;
  readonly restore?: RestoreReport;
  /** The oracle's verdict on this resume (against the oracle, or without one against the image). */
  readonly check?: OracleVerdict;
  readonly verify: VerifyReport[];
  /** For refusals with proveUntouched: RAM equal before and after the refusal. */
  readonly guestMemoryUntouched?: boolean;
  readonly generation?: number;
  /**
   * boot, validate (what is left of the validation once the boot kernel is up), restore
   * (plan and load), trampoline, compare, verify.
   */
  readonly phasesMs: Readonly<Record<string, number>>;
  /** The validation's page scan: chunks checked, and how many on the CRC thread (which began while the boot kernel booted). */
  readonly validationScan?: ValidatedImage['scan'];
  readonly console: string;
  /** Whether the image's signature was consumed (reset). */
  readonly signatureReset: boolean;
  /** The running guest, with keepRunning. */
  readonly guest?: Guest;
  /** The image's frames and those the restore loaded in place (bitmap words), for pictures. */
  readonly frames?: { readonly saved: Uint32Array; readonly inPlace?: Uint32Array };
  /** How the trampoline copied, as the CPU held it at RESTORE_DONE: with paging on (on the page directory at cr3) or off. */
  readonly trampolineCpu?: { readonly paging: boolean; readonly cr3: number };
}

export interface CycleReport {
  readonly verdict: 'pass' | 'fail';
  /** One sentence per broken rule (the oracle's, and the resume's if it did not happen). */
  readonly failures: readonly string[];
  readonly config: { ramBytes: number; workload: string; seed: number; save: string; saveOptions: SaveReport['options']; restore: string; restoreOptions?: RestoreReport['options']; deterministic: boolean; largePages: boolean; imagePath: string; /** V8's compilers for v86 in this process (chooseWasmTiers). */ wasmTiers: string };
  readonly buildId: string;
  readonly save: SaveReport;
  readonly restore?: RestoreReport;
  readonly resumeStatus: ResumeStatus;
  /** The resumed kernel's generation (1 after the first resume of a lineage). */
  readonly generation?: number;
  /** The oracle's verdict: the image's page set, the restored pages, the CPU context, the workloads' reports. */
  readonly oracle: OracleVerdict;
  readonly verify: readonly VerifyReport[];
  readonly phasesMs: Readonly<Record<string, number>>;
  /** The resume's page scan: chunks checked, and how many on the CRC thread, beside resume.boot (resume.validate is what the boot kernel waited for). */
  readonly validationScan?: ValidatedImage['scan'];
  /** The last lines the guest printed (the resumed kernel's, or the boot kernel's if it did not resume). */
  readonly consoleTail: string;
  /** Every frame at the atomic point and what became of it (for the memory-map picture); left out of JSON reports. */
  readonly frameMap?: FrameMap;
}

/** One cycle's frames, for pictures: owner at the atomic point, saved, loaded in place, faulted during the save. */
export interface FrameMap {
  readonly frameCount: number;
  /** The guest's owner code of every frame at the atomic point (abi.ts OWNERS). */
  readonly owners: Uint8Array;
  /** Allocator-bitmap words: frames in the image. */
  readonly saved: Uint32Array;
  /** Frames the restore loaded straight into place (the others of the image went through PBEs). */
  readonly inPlace?: Uint32Array;
  /** Frames that faulted while a live save wrote the image. */
  readonly faulted?: Uint32Array;
}

/** The guest to boot: the one given, a kernel of one's own by path, or the built-in image. */
function guestImageOf(options: MachineChoice): GuestImageRef {
  return options.image ?? (options.kernel ? kernelImage(options.kernel) : loadGuestImage());
}

function progressOf(p: Progress | boolean | undefined): Progress {
  if (p === true) return consoleProgress();
  if (!p) return silentProgress;
  return p;
}

/** Bytes for a swap device that can hold an image of every frame of `ramBytes`. */
export function swapBytesFor(ramBytes: number): number {
  const pages = Math.ceil(ramBytes / PAGE_SIZE);
  // Room for the largest metadata a writer uses: a compressed image's (the suspend module's), whose data is never larger.
  const imageBytes = METADATA_OFFSET + roundUpToPage(pages * METADATA_BYTES_PER_COMPRESSED_PAGE) + pages * PAGE_SIZE;
  return Math.ceil(imageBytes / (1 << 20)) * (1 << 20);
}

/** Whether a save allocates its swap device in full: a device the user named, yes; a temporary one stays sparse. */
const allocatesDevice = (o: { readonly allocateDevice?: boolean; readonly imagePath?: string }) => o.allocateDevice ?? o.imagePath !== undefined;

/** Boots, warms up, saves with the chosen strategy and powers off. */
export async function hibernate(options: HibernateOptions = {}): Promise<HibernateResult> {
  const ramBytes = options.ramBytes ?? DEFAULT_RAM_BYTES;
  const image = guestImageOf(options);
  const strategy = typeof options.save === 'object' ? options.save : saveStrategy(options.save ?? 'swsusp');
  // A kernel of one's own runs what it runs: it is told no workload unless asked.
  const workloadText = options.workload ?? (options.kernel ? 'idle' : DEFAULT_WORKLOAD);
  const workload = parseWorkloadSpec(workloadText, ramBytes);
  const seed = options.seed ?? 1;
  const imagePath = options.imagePath ?? temporarySwapPath();
  const progress = progressOf(options.progress);
  const phases: Record<string, number> = {};
  // A temporary device lives for one cycle: writing all its blocks first (and freeing
  // them at the end) would cost the cycle 30 times what it saves its one save.
  const swap = SwapDevice.ensure(imagePath, swapBytesFor(ramBytes), { allocate: allocatesDevice(options) });
  let t = performance.now();
  let guest: Guest | undefined;
  try {
    guest = options.guest ?? await Guest.boot({
      ramBytes, image, workload, seed, swapPath: imagePath,
      deterministic: options.deterministic, largePages: options.largePages, onConsole: options.onConsole, prefault: options.prefault, hostHugePages: options.hostHugePages, reserveBytes: options.reserveBytes, lowmemBytes: options.lowmemBytes,
    });
    phases.boot = options.guest ? 0 : performance.now() - t;
    t = performance.now();
    await guest.runTicks(Math.max(1, Math.round(((options.warmupMs ?? DEFAULT_WARMUP_MS) * CONSTANTS.HZ.value) / 1000)));
    phases.warmup = performance.now() - t;
    const trace = guest.machine.trace;
    const verifyReportsExpected = guest.verifyReportsExpected();
    const { report, oracle, faulted } = await runSave(strategy, options.saveOptions, { guest, swap, progress, oracle: options.oracle ?? true });
    return {
      imagePath, buildId: image.buildId, ramBytes: guest.machine.ramBytes, workload: formatWorkload(workload), seed,
      save: report, verifyReportsExpected, oracle, faulted, phasesMs: roundAll(phases), console: guest.machine.console, trace,
    };
  } finally {
    swap.close();
    await guest?.machine.powerOff();
  }
}

/** Boots the boot kernel; if the swap device holds a valid image, restores it and verifies. */
export async function resume(options: ResumeOptions): Promise<ResumeResult> {
  const image = guestImageOf(options);
  const strategy = typeof options.restore === 'object' ? options.restore : restoreStrategy(options.restore ?? 'bitmap-pbe');
  const progress = progressOf(options.progress);
  const phases: Record<string, number> = {};
  const swap = SwapDevice.open(options.imagePath, { writable: true });
  // Told no RAM size, the boot kernel gets the one the image records (a RAM size given
  // that differs is refused by the validation, as before).
  const ramBytes = options.ramBytes ?? imageRamBytes(swap) ?? DEFAULT_RAM_BYTES;
  let status = 'no-image' as ResumeStatus;
  let reason: string | undefined;
  let errorCodeOf: string | undefined;
  let restoreReport: RestoreReport | undefined;
  let inPlace: Uint32Array | undefined;
  let validated: ValidatedImage | undefined;
  let untouched: boolean | undefined;
  let signatureReset = false;
  const givenThread = options.crcThread instanceof CrcThread ? options.crcThread : undefined;
  const crcThread = givenThread ?? (options.crcThread === false ? undefined : CrcThread.start());
  // The image is checked while the boot kernel boots, as nothing of the boot depends on
  // it: signature, header and metadata now, the pages' CRCs on the CRC thread meanwhile.
  // The boot kernel then waits only for what is left ("validate"); guest memory is
  // touched only after the verdict.
  let t = performance.now();
  let validation: ImageValidation | undefined = beginImageValidation(swap, { buildId: image.buildId, ramBytes }, { crcThread });
  let guest: Guest | undefined;
  try {
    guest = await Guest.boot(
      {
        ramBytes, image, swapPath: options.imagePath, workload: options.workload, seed: options.seed, deterministic: options.deterministic, largePages: options.largePages,
        onConsole: options.onConsole, prefault: options.prefault, hostHugePages: options.hostHugePages, reserveBytes: options.reserveBytes, lowmemBytes: options.lowmemBytes,
      },
      async (g) => {
        phases.boot = performance.now() - t;
        t = performance.now();
        const before = options.proveUntouched ? g.machine.ram.slice() : undefined;
        try {
          const begun = validation!;
          validation = undefined;
          if (g.machine.ramBytes !== ramBytes) await begun.cancel(); // v86 gave another RAM size: check against that
          validated = await (g.machine.ramBytes === ramBytes ? begun.finish() : validateImageAsync(swap, { buildId: image.buildId, ramBytes: g.machine.ramBytes }, { crcThread }));
          phases.validate = performance.now() - t;
          t = performance.now();
          const timer = new PhaseTimer();
          const { load, report } = await runRestore(strategy, options.restoreOptions, { guest: g, swap, image: validated, progress, timer });
          restoreReport = report;
          inPlace = load.inPlace;
          // The image is consumed: it must not be resumed twice (swsusp_check resets the
          // signature the same way, before the restore; counted in the restore phase).
          resetSignature(swap);
          signatureReset = true;
          phases.restore = performance.now() - t;
          status = 'resumed';
          return load.decision;
        } catch (err) {
          if (err instanceof ImageError || err instanceof RestoreRefusedError) {
            // A failure during the load (the file changed after validation) has written only
            // into frames the boot kernel had free: give them back and boot on.
            const freed = g.freeSnapshotFrames();
            if (freed) reason = `${err.message} (during the load; the ${freed} frames it had taken were freed)`;
            status = err instanceof ImageError && err.code === 'NO_SIGNATURE' ? 'no-image' : 'refused';
            reason ??= err.message;
            errorCodeOf = err.code;
            if (before) untouched = Buffer.compare(before, g.machine.ram) === 0;
            return { resume: false };
          }
          throw err;
        }
      },
    );
    if (status !== 'resumed') {
      return { status, reason, errorCode: errorCodeOf, verify: [], guestMemoryUntouched: untouched, phasesMs: roundAll(phases), console: guest.machine.console, signatureReset };
    }
    const g = guest;
    const verifier = new Verifier(validated!, options.oracle);
    let verify: VerifyReport[] = [];
    let died: MachineError | undefined;
    let trampolineCpu: ResumeResult['trampolineCpu'];
    t = performance.now();
    try {
      verify = await g.completeResume({
        atRestoreDone: () => {
          phases.trampoline = performance.now() - t;
          trampolineCpu = { paging: (g.machine.cr(0) & 0x80000000) !== 0, cr3: g.machine.cr(3) };
          t = performance.now();
          verifier.atRestoreDone(g.machine);
          phases.compare = performance.now() - t;
          t = performance.now();
        },
        atResumePoint: () => verifier.atResumePoint(g.machine),
      });
    } catch (err) {
      // The resumed kernel died: the verdict still says what was seen before it did.
      if (!(err instanceof MachineError)) throw err;
      died = err;
    }
    phases.verify = performance.now() - t;
    const expected = options.verifyReportsExpected ?? (died ? verify.length : g.verifyReportsExpected());
    const check = died
      ? judge({ against: verifier.against, frames: verifier.frames, memory: verifier.memory, cpu: verifier.cpu, tasks: { expected, reports: verify }, refusal: `the resumed kernel died: ${died.message}` })
      : verifier.verdict(verify, expected);
    const kept = options.keepRunning && !died ? g : undefined;
    if (kept) guest = undefined;
    return {
      status, restore: restoreReport, check, verify, generation: died ? undefined : g.generation, phasesMs: roundAll(phases), validationScan: validated!.scan,
      console: g.machine.console, signatureReset, guest: kept, frames: { saved: validated!.pfnWords, inPlace }, trampolineCpu,
      ...(died ? { reason: died.message, errorCode: died.code } : {}),
    };
  } finally {
    await validation?.cancel(); // the boot failed before the verdict was asked for
    if (!givenThread) await crcThread?.close();
    swap.close();
    await guest?.machine.powerOff();
  }
}

/**
 * hibernate() then resume() with the oracle, and the verdict. Without `imagePath` the
 * swap device is a temporary file, removed when the cycle ends (the report still names
 * it); a given `imagePath` is kept.
 */
export async function runCycle(options: CycleOptions = {}): Promise<CycleReport> {
  const imagePath = options.imagePath ?? temporarySwapPath();
  const crcThread = cycleCrcThread(options);
  try {
    const h = await hibernate({ ...options, imagePath, allocateDevice: allocatesDevice(options) });
    const r = await resume({ ...options, imagePath: h.imagePath, oracle: h.oracle, ramBytes: h.ramBytes, workload: h.workload, seed: h.seed, crcThread: crcThread ?? false, verifyReportsExpected: h.verifyReportsExpected });
    return cycleReport(h, r, options);
  } finally {
    await crcThread?.close();
    if (options.imagePath === undefined) rmSync(imagePath, { force: true });
  }
}

/** What runCycle and runLineage take: hibernate's and resume's options, and whether the resume checks CRCs on a second thread. */
export type CycleOptions = HibernateOptions & {
  readonly restore?: string | RestoreStrategy<any, any, any>;
  readonly restoreOptions?: GivenOptions;
  readonly crcThread?: boolean;
};

/** The CRC thread of a cycle's resume, started with the cycle so that it is up before the boot kernel boots. */
function cycleCrcThread(options: CycleOptions): CrcThread | undefined {
  return options.crcThread === false ? undefined : CrcThread.start();
}

function temporarySwapPath(): string {
  return tmp.tmpNameSync({ prefix: 'hiberlab-', postfix: '.swap' });
}

/**
 * `count` cycles of one guest lineage: each resumed kernel runs its workloads on
 * and is hibernated again (generation 1, 2, …), on the same swap device (a temporary
 * one, removed at the end, unless `imagePath` is given).
 */
export async function runLineage(count: number, options: CycleOptions = {}): Promise<CycleReport[]> {
  const reports: CycleReport[] = [];
  const imagePath = options.imagePath ?? temporarySwapPath();
  const crcThread = cycleCrcThread(options);
  let live: Guest | undefined;
  try {
    for (let i = 0; i < count; i++) {
      const h = await hibernate({ ...options, imagePath, allocateDevice: allocatesDevice(options), guest: live });
      live = undefined;
      const r = await resume({ ...options, imagePath, oracle: h.oracle, ramBytes: h.ramBytes, workload: h.workload, seed: h.seed, keepRunning: i < count - 1, crcThread: crcThread ?? false, verifyReportsExpected: h.verifyReportsExpected });
      live = r.guest;
      reports.push(cycleReport(h, r, options));
      if (reports.at(-1)!.verdict === 'fail') break;
    }
  } finally {
    await live?.machine.powerOff();
    await crcThread?.close();
    if (options.imagePath === undefined) rmSync(imagePath, { force: true });
  }
  return reports;
}

/** The cycle's report: the oracle's verdict on what the save captured and the resume brought back. */
function cycleReport(h: HibernateResult, r: ResumeResult, options: CycleOptions): CycleReport {
  const oracle = r.check ?? judge({
    against: h.oracle ? 'oracle' : 'image',
    tasks: { expected: h.verifyReportsExpected, reports: [] },
    refusal: `resume ${r.status}: ${r.reason ?? ''}`,
  });
  const phases: Record<string, number> = {};
  for (const [k, v] of Object.entries(h.phasesMs)) phases[`hibernate.${k}`] = v;
  for (const [k, v] of Object.entries(h.save.phasesMs)) phases[`save.${k}`] = v;
  for (const [k, v] of Object.entries(r.phasesMs)) phases[`resume.${k}`] = v;
  if (r.restore) for (const [k, v] of Object.entries(r.restore.phasesMs)) phases[`restore.${k}`] = v;
  const restoreName = typeof options.restore === 'object' ? options.restore.name : (options.restore ?? 'bitmap-pbe');
  return {
    verdict: oracle.verdict,
    failures: oracle.failures,
    config: {
      ramBytes: h.ramBytes, workload: h.workload, seed: h.seed, save: h.save.strategy, saveOptions: h.save.options, restore: r.restore?.strategy ?? restoreName,
      restoreOptions: r.restore?.options, deterministic: !!options.deterministic, largePages: !!options.largePages, imagePath: h.imagePath, wasmTiers,
    },
    buildId: h.buildId,
    save: h.save,
    restore: r.restore,
    resumeStatus: r.status,
    generation: r.generation,
    oracle,
    verify: r.verify,
    phasesMs: phases,
    validationScan: r.validationScan,
    consoleTail: r.console.replace(/\r/g, '').trimEnd().split('\n').slice(-40).join('\n'),
    ...(h.oracle && r.frames ? { frameMap: { frameCount: h.oracle.frameCount, owners: h.oracle.owners, saved: r.frames.saved, inPlace: r.frames.inPlace, faulted: h.faulted } } : {}),
  };
}

function roundAll(p: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, round1(v)]));
}

export { errorCode, HiberlabError };
