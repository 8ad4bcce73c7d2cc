/**
 * A workload under write protection (`hiberlab faults`): boot, warm up, write-protect
 * the pages (every protectable page in use, or only the workloads' buffers), run for a
 * while with a fault policy — protecting the written pages again every interval, as
 * dirty-logging rounds do — then let the workloads verify their data. The same run
 * without protection gives the baseline for the slowdown.
 *
 * Slowdown = the guest's work per host second unprotected / protected, where the work
 * is the workloads' step count (their headers) over the wall time of the measured
 * interval; with no workload task, the ratio of wall times. In fast mode guest time
 * follows the host clock, so a rate-limited workload only slows when the CPU
 * saturates; in deterministic mode guest time follows instructions and the slowdown
 * is all in the wall time.
 */
import { performance } from 'node:perf_hooks';
import { OWNERS, ownerName } from '../abi.ts';
import { Guest, type VerifyReport } from '../machine/guest.ts';
import { loadGuestImage } from '../machine/guest-image.ts';
import { readStruct } from '../machine/guest-structs.ts';
import type { GuestImageRef } from '../machine/machine.ts';
import { formatWorkload, parseWorkloadSpec } from '../machine/workload.ts';
import { saveablePfns } from '../save/common.ts';
import { FaultHandler, type FaultTraceEvent } from './faults.ts';
import { policyByName } from './policies/index.ts';
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
  /** Guest milliseconds the workloads run before protection starts (lets the JIT warm up). Default 200. */
  readonly warmupMs?: number;
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
}

export interface FaultRunReport {
  readonly config: {
    readonly ramBytes: number;
    readonly workload: string;
    readonly seed: number;
    readonly policy: string;
    readonly durationMs: number;
    readonly intervalMs: number;
    readonly scope: ProtectScope;
    readonly deterministic: boolean;
    readonly largePages: boolean;
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
  readonly tlb: TlbStats;
  readonly protectedRun: RunMeasure;
  readonly baselineRun?: RunMeasure;
  /** Work per host second unprotected / protected (≥ 1 means slower under protection). */
  readonly slowdown?: number;
  /** The workloads' own verification after the protected run (under protection). */
  readonly verify: readonly VerifyReport[];
  readonly trace?: readonly FaultTraceEvent[];
}

const TICK_MS = 10;

function workloadSteps(guest: Guest): number {
  let steps = 0;
  for (const t of guest.tasks()) {
    if ((t.kind !== 'churn' && t.kind !== 'stream') || !t.bufBase) continue;
    const h = readStruct(guest.machine, 'workload_header', t.bufBase);
    steps += h.steps_hi * 2 ** 32 + h.steps_lo;
  }
  return steps;
}

function snapshot(guest: Guest): { wall: number; guestMs: number; instructions: number; steps: number } {
  return { wall: performance.now(), guestMs: guest.machine.guestTimeMs(), instructions: guest.machine.instructions, steps: workloadSteps(guest) };
}

function measure(a: ReturnType<typeof snapshot>, b: ReturnType<typeof snapshot>): RunMeasure {
  return { startGuestMs: a.guestMs, wallMs: b.wall - a.wall, guestMs: b.guestMs - a.guestMs, instructions: b.instructions - a.instructions, steps: b.steps - a.steps };
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
}

function settings(options: FaultRunOptions): Settings {
  return {
    durationTicks: Math.max(1, Math.ceil((options.durationMs ?? 1000) / TICK_MS)),
    intervalTicks: Math.max(0, Math.ceil((options.intervalMs ?? 100) / TICK_MS)),
  };
}

/** Boots the guest and runs the warm-up; powers the machine off if that fails. */
async function bootWarm(options: FaultRunOptions): Promise<Guest> {
  const guest = await Guest.boot({
    ramBytes: options.ramBytes ?? 64 * 1024 * 1024,
    image: options.image ?? loadGuestImage(),
    workload: options.workload ?? DEFAULT_FAULTS_WORKLOAD,
    seed: options.seed ?? 1,
    deterministic: options.deterministic,
    largePages: options.largePages,
    onConsole: options.onConsole,
  });
  try {
    const warmTicks = Math.ceil((options.warmupMs ?? 200) / TICK_MS);
    if (warmTicks > 0) await guest.runTicks(warmTicks);
    return guest;
  } catch (err) {
    await guest.machine.powerOff();
    throw err;
  }
}

async function runBaseline(options: FaultRunOptions): Promise<RunMeasure> {
  const guest = await bootWarm(options);
  try {
    const a = snapshot(guest);
    await guest.runTicks(settings(options).durationTicks);
    return measure(a, snapshot(guest));
  } finally {
    await guest.machine.powerOff();
  }
}

async function runProtected(options: FaultRunOptions) {
  const { durationTicks, intervalTicks } = settings(options);
  const guest = await bootWarm(options);
  try {
    const protector = new WriteProtector(guest);
    const candidates = scopePfns(guest, options.scope ?? 'all');
    const forbidden = protector.forbidden();
    const scope = candidates.filter((pfn) => !forbidden.has(pfn));
    const poolPages = options.poolPages ?? Math.max(1, Math.min(scope.length, Math.floor(guest.allocator.freeCount / 2)));
    const policy = policyByName(options.policy ?? 'dirty-track', guest, protector, { poolPages });
    const handler = new FaultHandler(guest, protector, policy, { trace: options.trace, onTrace: options.onFault });
    handler.install();
    const reason = `faults:${policy.name}`;
    const a = snapshot(guest);
    protector.protect(scope, reason);
    const protectedPages = protector.protectedCount;
    let rounds = 1;
    for (let done = 0; done < durationTicks;) {
      const step = intervalTicks > 0 ? Math.min(intervalTicks, durationTicks - done) : durationTicks - done;
      await guest.runTicks(step);
      done += step;
      if (intervalTicks > 0 && done < durationTicks) {
        policy.clear?.();
        protector.protect(scope.filter((pfn) => !protector.isProtected(pfn)), reason);
        rounds++;
      }
    }
    const run = measure(a, snapshot(guest));
    const verify = await guest.verifyNow();
    const owners = guest.allocator.owners.slice();
    return { run, handler, protector, protectedPages, forbiddenPages: candidates.length - scope.length, rounds, verify, owners };
  } finally {
    await guest.machine.powerOff();
  }
}

/** Runs a workload under write protection (and unprotected, for the slowdown) and reports the faults. */
export async function runFaults(options: FaultRunOptions = {}): Promise<FaultRunReport> {
  const ramBytes = options.ramBytes ?? 64 * 1024 * 1024;
  const workload = formatWorkload(parseWorkloadSpec(options.workload ?? DEFAULT_FAULTS_WORKLOAD, ramBytes));
  const p = await runProtected(options);
  const baselineRun = (options.baseline ?? true) ? await runBaseline(options) : undefined;
  const { durationTicks, intervalTicks } = settings(options);
  const owners = p.owners;
  const stats = p.handler.stats;
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
  const rate = (m: RunMeasure) => (m.steps > 0 ? m.steps / m.wallMs : 1 / m.wallMs);
  return {
    config: {
      ramBytes, workload, seed: options.seed ?? 1, policy: p.handler.policy.name,
      durationMs: durationTicks * TICK_MS,
      intervalMs: intervalTicks * TICK_MS,
      scope: options.scope ?? 'all', deterministic: !!options.deterministic, largePages: !!options.largePages,
    },
    protectedPages: p.protectedPages,
    forbiddenPages: p.forbiddenPages,
    splits: p.protector.splits,
    rounds: p.rounds,
    faults: {
      total: stats.faults,
      handled: stats.handled,
      notMine: stats.notMine,
      pagesFaulted: stats.pagesFaulted,
      perGuestSecond: p.run.guestMs > 0 ? (stats.faults / p.run.guestMs) * 1000 : 0,
      perWallSecond: p.run.wallMs > 0 ? (stats.faults / p.run.wallMs) * 1000 : 0,
      maxPerPage: counts.reduce((a, b) => Math.max(a, b), 0),
      meanPerPage: counts.length ? counts.reduce((a, b) => a + b, 0) / counts.length : 0,
      histogram,
      topPages,
    },
    tlb: { ...p.protector.tlb },
    protectedRun: p.run,
    baselineRun,
    slowdown: baselineRun ? rate(baselineRun) / rate(p.run) : undefined,
    verify: p.verify,
    trace: p.handler.trace,
  };
}
