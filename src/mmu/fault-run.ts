/**
 * A workload under write protection (`hiberlab faults`): boot, warm up, write-protect
 * the pages (every protectable page in use, or only the workloads' buffers), run for a
 * while with a fault policy — protecting the written pages again every interval, as
 * dirty-logging rounds do — then let the workloads verify their data. The same guest,
 * run as long without protection right before, gives the baseline for the slowdown.
 *
 * Slowdown = the guest's work per host second unprotected / protected, where the work
 * is the workloads' step count (their headers) over the wall time of the measured
 * interval; with no workload task, the ratio of wall times. In fast mode guest time
 * follows the host clock, so a rate-limited workload only slows when the CPU
 * saturates; in deterministic mode guest time follows instructions and the slowdown
 * is all in the wall time. Cost per fault = the protected run's host time beyond what
 * its steps took at the baseline's rate, divided by its faults.
 *
 * Both runs are measured in one guest, in the same JIT state, over the same ticks cut
 * into the same slices, because on v86 the host's speed on a guest loop depends mostly
 * on what the JIT and V8 have compiled so far (docs/V86.md, "What a faulting workload
 * costs"):
 *   - a fresh machine runs its hot loop at a fraction of full speed for seconds
 *     while V8 optimizes the modules v86's JIT made (on background threads,
 *     which on a loaded host take the guest's core), and a second machine in the same
 *     process reuses what the first one compiled, so two fresh guests measured one
 *     after the other would compare the order they ran in, not protection;
 *   - the first faults at an instruction are taken in code compiled without an entry
 *     point there: v86 runs the retries in its interpreter until it has compiled the
 *     page again, and V8 then optimizes the new module. So right after boot the pages
 *     are protected in short rounds (the priming run, policy `count`) until a round
 *     makes v86 compile nothing, and the warm-up then also covers V8's work on the
 *     recompiled code; that one-time cost is reported apart (`prime`), not spread over
 *     the faults of the measured run.
 */
import { performance } from 'node:perf_hooks';
import { OWNERS, ownerName } from '../abi.ts';
import { Guest, type VerifyReport } from '../machine/guest.ts';
import { loadGuestImage } from '../machine/guest-image.ts';
import { readStruct } from '../machine/guest-structs.ts';
import type { GuestImageRef } from '../machine/machine.ts';
import { formatWorkload, parseWorkloadSpec } from '../machine/workload.ts';
import { wasmTiers } from '../machine/v86.ts';
import { saveablePfns } from '../save/common.ts';
import { FaultHandler, type FaultTraceEvent } from './faults.ts';
import { CountPolicy, policyByName } from './policies/index.ts';
import { WriteProtector, type TlbStats } from './protect.ts';

export const DEFAULT_FAULTS_WORKLOAD = 'churn:4M@2000,stream:8M@4000';

export type ProtectScope = 'all' | 'workload';

export interface FaultRunOptions {
  readonly ramBytes?: number;
  readonly image?: GuestImageRef;
  /** Workload spec. Default DEFAULT_FAULTS_WORKLOAD. */
  readonly workload?: string;
  readonly seed?: number;
  /** Fault policy name (see POLICY_NAMES). Default "dirty-track". */
  readonly policy?: string;
  /** Guest milliseconds measured. Default 1000 (rounded up to whole timer ticks). */
  readonly durationMs?: number;
  /** Guest milliseconds between re-protections of the written pages; 0 = protect once. Default 100. */
  readonly intervalMs?: number;
  /**
   * Guest milliseconds the workloads run unprotected after the priming run and before
   * the measured runs, so that v86's JIT and V8 have compiled the hot code (see the
   * file comment). Default DEFAULT_FAULTS_WARMUP_MS (DEFAULT_FAULTS_DET_WARMUP_MS in
   * deterministic mode, where the JIT is off and guest time costs more host time).
   */
  readonly warmupMs?: number;
  /**
   * At most this many guest milliseconds of priming right after boot: the pages in scope
   * protected in rounds of PRIME_ROUND_MS with policy `count` until a round makes
   * v86's JIT compile nothing, so that the faulting instructions are compiled as entry
   * points before anything is measured (with the JIT off, one round). 0 = no priming
   * (the measured run then pays for it). Default DEFAULT_FAULTS_PRIME_MS.
   */
  readonly primeMs?: number;
  /** What to protect: every protectable page in use ("all", default) or the workloads' buffers. */
  readonly scope?: ProtectScope;
  /** Frames in the copy-before-write pool. Default: one per protected page, at most half the free frames. */
  readonly poolPages?: number;
  /** Also run unprotected for the slowdown. Default true. */
  readonly baseline?: boolean;
  readonly deterministic?: boolean;
  readonly largePages?: boolean;
  /** Every fault of the protected run. */
  readonly onFault?: (event: FaultTraceEvent) => void;
  /** Keep every fault in the report's `trace`. Default false. */
  readonly trace?: boolean;
  readonly onConsole?: (text: string) => void;
}

/** One measured interval. */
export interface RunMeasure {
  /** Guest clock (ms since boot) when the measured interval began: trace times are on this clock. */
  readonly startGuestMs: number;
  readonly wallMs: number;
  readonly guestMs: number;
  readonly instructions: number;
  /** Workload steps done (sum over churn/stream tasks). */
  readonly steps: number;
  /** Guest timer ticks run. */
  readonly ticks: number;
  /** The runs the ticks were cut into: one per protection round (the baseline is cut the same way). */
  readonly slices: readonly number[];
  /** Page faults taken (0 unprotected). */
  readonly faults: number;
  /** Compilations v86's JIT started during the interval (Machine.jitCompiles; 0 in deterministic mode). */
  readonly jitCompiles: number;
}

/** The priming run. */
export interface PrimeMeasure extends RunMeasure {
  /** Its last round made v86 compile nothing (false: it stopped at primeMs; the measured run may still pay for compiling). */
  readonly settled: boolean;
}

export interface FaultRunReport {
  readonly config: {
    readonly ramBytes: number;
    readonly workload: string;
    readonly seed: number;
    readonly policy: string;
    readonly durationMs: number;
    readonly intervalMs: number;
    readonly warmupMs: number;
    readonly primeMs: number;
    readonly scope: ProtectScope;
    readonly deterministic: boolean;
    readonly largePages: boolean;
    /** V8's compilers for v86 in this process (chooseWasmTiers): the fault path's speed depends on them. */
    readonly wasmTiers: string;
  };
  /** Pages protected at the start. */
  readonly protectedPages: number;
  /** Pages in scope that could not be protected (stacks, page tables, descriptor tables, bookkeeping). */
  readonly forbiddenPages: number;
  /** 4 MiB pages split. */
  readonly splits: number;
  /** Protection rounds (1 + re-protections). */
  readonly rounds: number;
  readonly faults: {
    readonly total: number;
    readonly handled: number;
    readonly notMine: number;
    readonly pagesFaulted: number;
    readonly perGuestSecond: number;
    readonly perWallSecond: number;
    readonly maxPerPage: number;
    readonly meanPerPage: number;
    /** Pages by fault count: [1, 2, 3–4, 5–8, …] buckets as "lo-hi": pages. */
    readonly histogram: Readonly<Record<string, number>>;
    /** The most-faulted pages. */
    readonly topPages: ReadonlyArray<{ pfn: number; faults: number; owner: string }>;
  };
  /** TLB work of the measured protected run. */
  readonly tlb: TlbStats;
  /** The priming run (absent with primeMs 0): one slice per round; its faults were taken by code not yet compiled for them. */
  readonly prime?: PrimeMeasure;
  readonly protectedRun: RunMeasure;
  /** The same guest unprotected, right before the protected run. */
  readonly baselineRun?: RunMeasure;
  /** Work per host second unprotected / protected (≥ 1 means slower under protection). */
  readonly slowdown?: number;
  /** Host ms the protected run took beyond what its work took at the baseline's rate (negative: within the noise). */
  readonly extraWallMs?: number;
  /** extraWallMs per fault of the protected run, in µs (absent without faults or without a baseline). */
  readonly costPerFaultUs?: number;
  /** The workloads' own verification after the protected run (under protection). */
  readonly verify: readonly VerifyReport[];
  readonly trace?: readonly FaultTraceEvent[];
}

const TICK_MS = 10;

/**
 * Fast mode: after boot and priming, V8 keeps compiling v86's modules on background
 * threads for seconds of host time (docs/V86.md, "What a faulting workload costs"). A
 * baseline measured before that ends is slow, and the slowdown comes out below 1.
 */
export const DEFAULT_FAULTS_WARMUP_MS = 3000;
/** Deterministic mode: the JIT is off (nothing to wait for), and guest time costs far more host time than in fast mode. */
export const DEFAULT_FAULTS_DET_WARMUP_MS = 200;
/** The cap on priming: long enough, several times over, for v86 to ask for the recompile after the first faults and get it, unless a compilation is pending. */
export const DEFAULT_FAULTS_PRIME_MS = 1000;
/** One priming round: protect everything in scope, run this long. */
export const PRIME_ROUND_MS = 20;

function workloadSteps(guest: Guest): number {
  let steps = 0;
  for (const t of guest.tasks()) {
    if ((t.kind !== 'churn' && t.kind !== 'stream') || !t.bufBase) continue;
    const h = readStruct(guest.machine, 'workload_header', t.bufBase);
    steps += h.steps_hi * 2 ** 32 + h.steps_lo;
  }
  return steps;
}

interface Snapshot {
  readonly wall: number;
  readonly guestMs: number;
  readonly instructions: number;
  readonly steps: number;
  readonly jitCompiles: number;
}

function snapshot(guest: Guest): Snapshot {
  const m = guest.machine;
  return { wall: performance.now(), guestMs: m.guestTimeMs(), instructions: m.instructions, steps: workloadSteps(guest), jitCompiles: m.jitCompiles };
}

function measure(a: Snapshot, b: Snapshot, slices: readonly number[], faults: number): RunMeasure {
  return {
    startGuestMs: a.guestMs, wallMs: b.wall - a.wall, guestMs: b.guestMs - a.guestMs, instructions: b.instructions - a.instructions,
    steps: b.steps - a.steps, ticks: slices.reduce((x, y) => x + y, 0), slices, faults, jitCompiles: b.jitCompiles - a.jitCompiles,
  };
}

/** The frames to protect for a scope (before removing the forbidden ones). */
export function scopePfns(guest: Guest, scope: ProtectScope): Uint32Array {
  const inUse = saveablePfns(guest.allocator);
  if (scope === 'all') return inUse;
  const owners = guest.allocator.owners;
  return inUse.filter((pfn) => owners[pfn]! >= OWNERS.TASK_BASE.value);
}

interface Settings {
  readonly durationTicks: number;
  readonly intervalTicks: number;
  readonly warmupTicks: number;
  readonly primeTicks: number;
  /** The measured runs' slices: one per protection round. */
  readonly slices: readonly number[];
}

const PRIME_ROUND_TICKS = Math.max(1, Math.ceil(PRIME_ROUND_MS / TICK_MS));

function settings(options: FaultRunOptions): Settings {
  const ticks = (ms: number) => Math.max(0, Math.ceil(ms / TICK_MS));
  const det = !!options.deterministic;
  const durationTicks = Math.max(1, ticks(options.durationMs ?? 1000));
  const intervalTicks = ticks(options.intervalMs ?? 100);
  const slices: number[] = [];
  for (let done = 0; done < durationTicks;) {
    const step = intervalTicks > 0 ? Math.min(intervalTicks, durationTicks - done) : durationTicks - done;
    slices.push(step);
    done += step;
  }
  return {
    durationTicks,
    intervalTicks,
    warmupTicks: ticks(options.warmupMs ?? (det ? DEFAULT_FAULTS_DET_WARMUP_MS : DEFAULT_FAULTS_WARMUP_MS)),
    primeTicks: ticks(options.primeMs ?? DEFAULT_FAULTS_PRIME_MS),
    slices,
  };
}

/** The frames in scope that may be protected now. */
function protectable(guest: Guest, protector: WriteProtector, scope: ProtectScope): { candidates: Uint32Array; pfns: Uint32Array } {
  const candidates = scopePfns(guest, scope);
  const forbidden = protector.forbidden();
  return { candidates, pfns: candidates.filter((pfn) => !forbidden.has(pfn)) };
}

/**
 * The priming run: the pages in scope protected in rounds (policy `count`) until a round
 * that began with no compilation pending made v86's JIT start none, or `maxTicks`; then
 * all unprotected again. A fault's retry runs in v86's interpreter unless the faulting
 * instruction is an entry point of the compiled code, and only interpreted runs make
 * v86 compile (while one compilation is pending it starts no other; in the first
 * machine of a process those take up to a second), so one round right after boot is
 * not enough: its faults may all be over before v86 compiles anything for them.
 */
async function prime(guest: Guest, protector: WriteProtector, scope: ProtectScope, maxTicks: number): Promise<PrimeMeasure> {
  const m = guest.machine;
  const handler = new FaultHandler(guest, protector, new CountPolicy()).install();
  try {
    const pfns = protectable(guest, protector, scope).pfns;
    const a = snapshot(guest);
    const slices: number[] = [];
    let settled = false;
    for (let done = 0; done < maxTicks && !settled;) {
      // A round counts only if no compilation was pending at its start: v86 keeps the
      // heat of a page while one is, and compiles it at the next interpreted run there.
      const compiles = m.jitCompiles;
      const idle = m.jitCompilesFinished === compiles;
      protector.protect(pfns.filter((pfn) => !protector.isProtected(pfn)), 'faults:prime');
      const step = Math.min(PRIME_ROUND_TICKS, maxTicks - done);
      await guest.runTicks(step);
      slices.push(step);
      done += step;
      settled = idle && m.jitCompiles === compiles;
    }
    return { ...measure(a, snapshot(guest), slices, handler.stats.faults), settled };
  } finally {
    handler.uninstall();
    protector.unprotectAll();
  }
}

/**
 * Runs the slices; `beforeSlice(k)` runs before slice k (the protected run protects
 * there). The baseline and the protected run both go through here, so that they are
 * cut and measured alike.
 */
async function runSlices(guest: Guest, slices: readonly number[], beforeSlice: (k: number) => void, faults: () => number): Promise<RunMeasure> {
  const f0 = faults();
  const a = snapshot(guest);
  for (let k = 0; k < slices.length; k++) {
    beforeSlice(k);
    await guest.runTicks(slices[k]!);
  }
  return measure(a, snapshot(guest), slices, faults() - f0);
}

const diffTlb = (a: TlbStats, b: TlbStats): TlbStats => ({ batches: b.batches - a.batches, fullFlushes: b.fullFlushes - a.fullFlushes, pagesInvalidated: b.pagesInvalidated - a.pagesInvalidated });

/** Runs a workload under write protection (and unprotected, for the slowdown) and reports the faults. */
export async function runFaults(options: FaultRunOptions = {}): Promise<FaultRunReport> {
  const ramBytes = options.ramBytes ?? 64 * 1024 * 1024;
  const workload = formatWorkload(parseWorkloadSpec(options.workload ?? DEFAULT_FAULTS_WORKLOAD, ramBytes));
  const st = settings(options);
  const scopeName = options.scope ?? 'all';
  const guest = await Guest.boot({
    ramBytes,
    image: options.image ?? loadGuestImage(),
    workload: options.workload ?? DEFAULT_FAULTS_WORKLOAD,
    seed: options.seed ?? 1,
    deterministic: options.deterministic,
    largePages: options.largePages,
    onConsole: options.onConsole,
  });
  try {
    const protector = new WriteProtector(guest);
    const primeRun = st.primeTicks > 0 ? await prime(guest, protector, scopeName, st.primeTicks) : undefined;
    if (st.warmupTicks > 0) await guest.runTicks(st.warmupTicks);

    const { candidates, pfns: scope } = protectable(guest, protector, scopeName);
    const poolPages = options.poolPages ?? Math.max(1, Math.min(scope.length, Math.floor(guest.allocator.freeCount / 2)));
    const policy = policyByName(options.policy ?? 'dirty-track', guest, protector, { poolPages });
    const handler = new FaultHandler(guest, protector, policy, { trace: options.trace, onTrace: options.onFault });
    const faults = () => handler.stats.faults;
    const baselineRun = (options.baseline ?? true) ? await runSlices(guest, st.slices, () => {}, faults) : undefined;

    handler.install();
    const reason = `faults:${policy.name}`;
    const tlb0 = { ...protector.tlb };
    let protectedPages = 0;
    const protectedRun = await runSlices(guest, st.slices, (k) => {
      if (k === 0) {
        protector.protect(scope, reason);
        protectedPages = protector.protectedCount;
      } else {
        policy.clear?.();
        protector.protect(scope.filter((pfn) => !protector.isProtected(pfn)), reason);
      }
    }, faults);
    const tlb = diffTlb(tlb0, protector.tlb);
    const verify = await guest.verifyNow();
    const owners = guest.allocator.owners.slice();
    return report({
      options, ramBytes, workload, st, scopeName, handler, protector, protectedPages, forbiddenPages: candidates.length - scope.length,
      rounds: st.slices.length, tlb, primeRun, protectedRun, baselineRun, verify, owners,
    });
  } finally {
    await guest.machine.powerOff();
  }
}

interface Outcome {
  readonly options: FaultRunOptions;
  readonly ramBytes: number;
  readonly workload: string;
  readonly st: Settings;
  readonly scopeName: ProtectScope;
  readonly handler: FaultHandler;
  readonly protector: WriteProtector;
  readonly protectedPages: number;
  readonly forbiddenPages: number;
  readonly rounds: number;
  readonly tlb: TlbStats;
  readonly primeRun: PrimeMeasure | undefined;
  readonly protectedRun: RunMeasure;
  readonly baselineRun: RunMeasure | undefined;
  readonly verify: readonly VerifyReport[];
  readonly owners: Uint8Array;
}

/** The work a run did: its workload steps, or the run itself when there is no workload task. */
const work = (m: RunMeasure) => (m.steps > 0 ? m.steps : 1);

/**
 * The protected run's cost against the baseline: the slowdown, the host time beyond
 * what its work took at the baseline's rate, and that per fault (none without faults).
 */
export function protectionCost(protectedRun: RunMeasure, baselineRun: RunMeasure): { slowdown: number; extraWallMs: number; costPerFaultUs?: number } {
  const baseRate = work(baselineRun) / baselineRun.wallMs;
  const slowdown = baseRate / (work(protectedRun) / protectedRun.wallMs);
  const extraWallMs = protectedRun.wallMs - work(protectedRun) / baseRate;
  return protectedRun.faults > 0 ? { slowdown, extraWallMs, costPerFaultUs: (extraWallMs * 1000) / protectedRun.faults } : { slowdown, extraWallMs };
}

function report(o: Outcome): FaultRunReport {
  const { options, st, handler, owners } = o;
  const stats = handler.stats;
  const perPage = stats.perPage;
  const counts = [...perPage.values()];
  const histogram: Record<string, number> = {};
  for (const c of counts) {
    const hi = 2 ** Math.ceil(Math.log2(c));
    const lo = hi <= 2 ? hi : hi / 2 + 1;
    const key = lo === hi ? `${hi}` : `${lo}-${hi}`;
    histogram[key] = (histogram[key] ?? 0) + 1;
  }
  const topPages = [...perPage].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 10).map(([pfn, faults]) => ({ pfn, faults, owner: ownerName(owners[pfn] ?? 0) }));
  const run = o.protectedRun;
  return {
    config: {
      ramBytes: o.ramBytes, workload: o.workload, seed: options.seed ?? 1, policy: handler.policy.name,
      durationMs: st.durationTicks * TICK_MS,
      intervalMs: st.intervalTicks * TICK_MS,
      warmupMs: st.warmupTicks * TICK_MS,
      primeMs: st.primeTicks * TICK_MS,
      scope: o.scopeName, deterministic: !!options.deterministic, largePages: !!options.largePages, wasmTiers,
    },
    protectedPages: o.protectedPages,
    forbiddenPages: o.forbiddenPages,
    splits: o.protector.splits,
    rounds: o.rounds,
    faults: {
      total: stats.faults,
      handled: stats.handled,
      notMine: stats.notMine,
      pagesFaulted: stats.pagesFaulted,
      perGuestSecond: run.guestMs > 0 ? (stats.faults / run.guestMs) * 1000 : 0,
      perWallSecond: run.wallMs > 0 ? (stats.faults / run.wallMs) * 1000 : 0,
      maxPerPage: counts.reduce((a, b) => Math.max(a, b), 0),
      meanPerPage: counts.length ? counts.reduce((a, b) => a + b, 0) / counts.length : 0,
      histogram,
      topPages,
    },
    tlb: o.tlb,
    prime: o.primeRun,
    protectedRun: run,
    baselineRun: o.baselineRun,
    ...(o.baselineRun ? protectionCost(run, o.baselineRun) : {}),
    verify: o.verify,
    trace: handler.trace,
  };
}
