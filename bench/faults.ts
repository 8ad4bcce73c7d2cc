/**
 * Fault round trips per second through the whole handler: a guest store to a
 * write-protected page → #PF → the guest's stub → `out` → Machine → FaultHandler →
 * policy (unprotect) → `iret` → the store again.
 *
 * The guest's pm task runs PROBES.WRITE_PAGES: one store into each of 8192 pages of a
 * frozen stream buffer (32 MiB). Each round runs it once unprotected (the loop's own
 * cost) and once with all 8192 pages protected; rate = faults / (protected −
 * unprotected time). The "bare hook" row is the floor: a Machine page-fault hook that
 * only sets R/W back, no FaultHandler, no policy. Rates are medians over the rounds
 * after a warm-up, in both modes: fast (JIT on) and deterministic (JIT off). The
 * variants take turns within every round.
 *
 * Beside it, the cost per fault in a real workload: `hiberlab faults` (runFaults) on a
 * churn workload, protected once and re-protected every 100 and every 10 ms; cost per
 * fault = the protected run's host time beyond its work at the baseline's rate, over
 * its faults (docs/V86.md, "What a faulting workload costs").
 *
 * Both run once per choice of V8's compilers for v86 (chooseWasmTiers), each in a
 * process of its own (bench/faults-child.ts): V8 fixes them once per process, and the
 * fault path runs through v86.wasm's own functions, whose speed they decide.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { CONSTANTS, PROBES } from '../src/abi.ts';
import { Guest } from '../src/machine/guest.ts';
import { type WasmTiers, wasmTiers } from '../src/machine/v86.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { runFaults } from '../src/mmu/fault-run.ts';
import { FaultHandler } from '../src/mmu/faults.ts';
import { PTE } from '../src/mmu/page-table.ts';
import { policyByName } from '../src/mmu/policies/index.ts';
import { WriteProtector } from '../src/mmu/protect.ts';
import { PAGE_SIZE } from '../src/units.ts';

const PAGES = 8192;
const ROUNDS = 64;
const WARMUP_ROUNDS = 8;

export interface FaultBenchRow {
  /** V8's compilers for v86 in the process that measured the row. */
  tiers: string;
  mode: 'fast (JIT on)' | 'deterministic (JIT off)';
  handler: string;
  /** Median fault round trips per second (millions). */
  medianM: number;
  /** Best round (millions per second). */
  bestM: number;
  /** Median ns per fault. */
  nsPerFault: number;
  /** protect() of all pages: ms (median). */
  protectMs: number;
}

/** The middle value (the upper one of an even count). */
export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function benchMode(deterministic: boolean): Promise<FaultBenchRow[]> {
  const guest = await Guest.boot({ ramBytes: 96 << 20, image: loadGuestImage(), workload: 'stream:32M', seed: 1, prefault: true, deterministic });
  const rows: FaultBenchRow[] = [];
  try {
    await guest.enterPm();
    await guest.pm('FREEZE');
    const t = guest.tasks().find((x) => x.kind === 'stream')!;
    const first = (t.bufBase >>> 12) + 1;
    const pfns = Uint32Array.from({ length: PAGES }, (_, i) => first + i);
    const m = guest.machine;
    const writePages = () => guest.pm('PROBE', PROBES.WRITE_PAGES.value, first * PAGE_SIZE, PAGES * PAGE_SIZE);
    const mode = deterministic ? 'deterministic (JIT off)' : 'fast (JIT on)';

    interface Variant {
      name: string;
      activate(): void;
      deactivate(): void;
      protect(): void;
      faults(): number;
      /** Per measured round: the unprotected and the protected run (ms). */
      baseMs: number[];
      protectedMs: number[];
      protectMs: number[];
    }
    const variants: Variant[] = [];
    {
      // The floor: the PTEs found once; clear R/W + flush per round; the hook only sets R/W back.
      const protector = new WriteProtector(guest);
      const pteAddrs = Array.from(pfns, (pfn) => protector.pteOf(pfn)!.entryAddr >>> 2);
      const cr3 = m.cr(3) & ~0xfff;
      let n = 0;
      const hook = (_err: number, cr2: number) => {
        const ram32 = m.ram32;
        const pde = ram32[(cr3 + ((cr2 >>> 22) << 2)) >>> 2]!;
        const a = ((pde & ~0xfff) >>> 2) + ((cr2 >>> 12) & 0x3ff);
        ram32[a] = ram32[a]! | PTE.WRITABLE;
        n++;
        return CONSTANTS.PF_HANDLED.value;
      };
      variants.push({
        name: 'bare hook',
        activate: () => m.setPageFaultHandler(hook),
        deactivate: () => m.setPageFaultHandler(undefined),
        protect: () => {
          const ram32 = m.ram32;
          for (const a of pteAddrs) ram32[a] = ram32[a]! & ~PTE.WRITABLE;
          m.flushTlb();
        },
        faults: () => n,
        baseMs: [],
        protectedMs: [],
        protectMs: [],
      });
    }
    const disposers: Array<() => void> = [];
    for (const name of ['count', 'dirty-track', 'copy-before-write']) {
      const protector = new WriteProtector(guest);
      const policy = policyByName(name, guest, protector, { poolPages: PAGES });
      const fh = new FaultHandler(guest, protector, policy);
      disposers.push(() => policy.dispose?.());
      variants.push({
        name,
        activate: () => fh.install(),
        deactivate: () => fh.uninstall(),
        protect: () => {
          policy.clear?.();
          protector.protect(pfns, 'bench');
        },
        faults: () => fh.stats.faults,
        baseMs: [],
        protectedMs: [],
        protectMs: [],
      });
    }
    // Rounds interleave the variants (rotating the order), so that drifts of the host
    // and of v86's JIT fall on all of them alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(round + k) % variants.length]!;
        v.activate();
        try {
          let t0 = performance.now();
          await writePages();
          const base = performance.now() - t0;
          t0 = performance.now();
          v.protect();
          v.protectMs.push(performance.now() - t0);
          const f0 = v.faults();
          t0 = performance.now();
          await writePages();
          const ms = performance.now() - t0;
          const n = v.faults() - f0;
          if (n !== PAGES) throw new Error(`${v.name}: ${n} faults for ${PAGES} protected pages`);
          if (round >= WARMUP_ROUNDS) {
            v.baseMs.push(base);
            v.protectedMs.push(ms);
          }
        } finally {
          v.deactivate();
        }
      }
    }
    for (const d of disposers) d();
    for (const v of variants) {
      // Each protected run against the median unprotected one: a host stall in a single
      // unprotected run would otherwise make that round's difference tiny and its rate absurd.
      const base = median(v.baseMs);
      const rates = v.protectedMs.filter((ms) => ms > base).map((ms) => PAGES / (ms - base) / 1000);
      const med = median(rates);
      rows.push({ tiers: wasmTiers, mode, handler: v.name, medianM: med, bestM: Math.max(...rates), nsPerFault: 1000 / med, protectMs: median(v.protectMs) });
    }
  } finally {
    await guest.machine.powerOff();
  }
  return rows;
}

/** The real workload: what runFaults measures, several runs per interval. */
const WORKLOAD = 'churn:8M';
const WORKLOAD_RAM_MIB = 64;
const WORKLOAD_INTERVALS_MS = [0, 100, 10] as const;
const WORKLOAD_RUNS = 5;

export interface FaultWorkloadRow {
  /** V8's compilers for v86 in the process that measured the row. */
  tiers: string;
  workload: string;
  ramMiB: number;
  /** Re-protection interval (0: protected once). */
  intervalMs: number;
  runs: number;
  /** Faults per protected run (median). */
  faults: number;
  slowdown: number;
  /** Host ms the protected run took beyond its work at the baseline's rate (median). */
  extraWallMs: number;
  /** Cost per fault, µs: median, lowest and highest run. */
  usPerFault: number;
  usPerFaultMin: number;
  usPerFaultMax: number;
  /** Priming rounds before the warm-up (median). */
  primeRounds: number;
}

export interface FaultBench {
  /** The microbench: fault round trips through the handler. */
  roundTrips: FaultBenchRow[];
  /** The cost per fault in a real workload. */
  workload: FaultWorkloadRow[];
}

/** runFaults on a churn workload (policy count, fast mode), WORKLOAD_RUNS times per interval, interleaved. */
export async function benchFaultWorkload(): Promise<FaultWorkloadRow[]> {
  const reports = new Map<number, Awaited<ReturnType<typeof runFaults>>[]>();
  for (let run = 0; run < WORKLOAD_RUNS; run++) {
    for (const intervalMs of WORKLOAD_INTERVALS_MS) {
      const r = await runFaults({ ramBytes: WORKLOAD_RAM_MIB << 20, workload: WORKLOAD, policy: 'count', intervalMs, durationMs: 1000 });
      if (r.costPerFaultUs === undefined) throw new Error(`faults bench: ${WORKLOAD} at interval ${intervalMs} ms took no fault`);
      (reports.get(intervalMs) ?? reports.set(intervalMs, []).get(intervalMs)!).push(r);
    }
  }
  return WORKLOAD_INTERVALS_MS.map((intervalMs) => {
    const rs = reports.get(intervalMs)!;
    const us = rs.map((r) => r.costPerFaultUs!);
    return {
      tiers: wasmTiers, workload: WORKLOAD, ramMiB: WORKLOAD_RAM_MIB, intervalMs, runs: rs.length,
      faults: median(rs.map((r) => r.protectedRun.faults)),
      slowdown: median(rs.map((r) => r.slowdown!)),
      extraWallMs: median(rs.map((r) => r.extraWallMs!)),
      usPerFault: median(us), usPerFaultMin: Math.min(...us), usPerFaultMax: Math.max(...us),
      primeRounds: median(rs.map((r) => r.prime?.slices.length ?? 0)),
    };
  });
}

/** Both benches in this process, with whatever compilers it has. */
export async function benchFaultsHere(): Promise<FaultBench> {
  const roundTrips = [...(await benchMode(false)), ...(await benchMode(true))];
  return { roundTrips, workload: await benchFaultWorkload() };
}

/** The V8 compiler choices the bench compares, `hiberlab faults`'s own first. */
export const FAULT_TIERS: readonly WasmTiers[] = ['tier-up', 'liftoff-only'];

/** Both benches once per choice of V8's compilers, each in a fresh process (bench/faults-child.ts). */
export async function benchFaults(): Promise<FaultBench> {
  const child = fileURLToPath(new URL('./faults-child.ts', import.meta.url));
  const all: FaultBench = { roundTrips: [], workload: [] };
  for (const tiers of FAULT_TIERS) {
    const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, child, tiers], { maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } });
    const part = JSON.parse(stdout) as FaultBench;
    all.roundTrips.push(...part.roundTrips);
    all.workload.push(...part.workload);
  }
  return all;
}

/** The microbench's ns per fault for the handler the workload runs use (count, JIT on), under the same compilers. */
function microNs(bench: FaultBench, tiers: string): number | undefined {
  return bench.roundTrips.find((r) => r.tiers === tiers && r.mode === 'fast (JIT on)' && r.handler === 'count')?.nsPerFault;
}

const intervalText = (ms: number) => (ms ? `every ${ms} ms` : 'once');

export function renderFaultWorkload(bench: FaultBench): string {
  const t = new Table({ head: ['V8 compilers', 'workload', 'protect', 'faults/run', 'slowdown', 'extra host', 'us/fault (median, range)', 'microbench us/fault'], style: { head: [], border: [] } });
  for (const r of bench.workload) {
    const micro = microNs(bench, r.tiers);
    t.push([r.tiers, `${r.workload}, ${r.ramMiB} MiB`, intervalText(r.intervalMs), String(r.faults), r.slowdown.toFixed(2), `${r.extraWallMs.toFixed(0)} ms`,
      `${r.usPerFault.toFixed(2)} (${r.usPerFaultMin.toFixed(2)} .. ${r.usPerFaultMax.toFixed(2)})`, micro === undefined ? '-' : (micro / 1000).toFixed(2)]);
  }
  return t.toString();
}

export function faultsMarkdown(bench: FaultBench): string {
  const rows = bench.roundTrips;
  const lines = [
    '## Fault round trips (write protection)',
    '',
    'A guest store to a write-protected page → #PF → the guest\'s stub → `out` → Machine →',
    'FaultHandler → policy (unprotect) → `iret` → the store again. The pm task stores once into',
    `each of ${PAGES} pages of a frozen 32 MiB buffer (PROBES.WRITE_PAGES); each round runs that`,
    `unprotected and then with all ${PAGES} pages protected; rate = faults / (protected time − the`,
    `median unprotected time), median and best of ${ROUNDS - WARMUP_ROUNDS} rounds after ${WARMUP_ROUNDS} warm-up rounds. "bare hook" is the floor: a`,
    'Machine page-fault hook that only sets R/W back. "protect" = `WriteProtector.protect()` of all',
    `${PAGES} pages (one full TLB flush). Target: ≥ 2 M round trips/s through the whole handler.`,
    'Each half in a fresh process with one choice of V8\'s compilers for v86 (`--wasm-tiers`):',
    'tier-up (V8\'s default, what `hiberlab faults` uses) and Liftoff only (what the other commands use).',
    '',
    '| V8 compilers | mode | handler | median M faults/s | best M faults/s | ns per fault (median) | protect 8192 pages |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.tiers} | ${r.mode} | ${r.handler} | ${r.medianM.toFixed(2)} | ${r.bestM.toFixed(2)} | ${r.nsPerFault.toFixed(0)} | ${r.protectMs.toFixed(2)} ms |`);
  }
  if (bench.workload.length) {
    const w = bench.workload[0]!;
    lines.push(
      '',
      `The same handler in a real workload: \`hiberlab faults\` (\`runFaults\`) on \`${w.workload}\` (${w.ramMiB} MiB,`,
      'policy count, JIT on, 1 s measured), the pages protected once or again every interval. One guest:',
      'priming (the pages protected in rounds until v86 compiles nothing more for the faults), the warm-up,',
      'then the baseline and the protected run back to back over the same ticks. Cost per fault = (the',
      'protected run\'s host time − its workload steps at the baseline\'s rate) / its faults; it includes the',
      'TLB refill after each re-protection\'s full flush.',
      `Median and range of ${w.runs} runs per row, taken in turns; the microbench's count row (JIT on, same compilers) beside.`,
      'docs/V86.md, "What a faulting workload costs", says what makes up the difference.',
      '',
      '| V8 compilers | workload | protected | faults per run | slowdown (median) | extra host time (median) | µs per fault (median) | µs per fault (range) | microbench µs per fault |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of bench.workload) {
      const micro = microNs(bench, r.tiers);
      lines.push(`| ${r.tiers} | ${r.workload}, ${r.ramMiB} MiB | ${intervalText(r.intervalMs)} | ${r.faults} | ${r.slowdown.toFixed(2)} | ${r.extraWallMs.toFixed(0)} ms | ${r.usPerFault.toFixed(2)} | ${r.usPerFaultMin.toFixed(2)} .. ${r.usPerFaultMax.toFixed(2)} | ${micro === undefined ? '-' : (micro / 1000).toFixed(2)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}
