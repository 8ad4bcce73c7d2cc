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
 */
import { performance } from 'node:perf_hooks';
import { CONSTANTS, PROBES } from '../src/abi.ts';
import { Guest } from '../src/machine/guest.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { FaultHandler } from '../src/mmu/faults.ts';
import { PTE } from '../src/mmu/page-table.ts';
import { policyByName } from '../src/mmu/policies/index.ts';
import { WriteProtector } from '../src/mmu/protect.ts';
import { PAGE_SIZE } from '../src/units.ts';

const PAGES = 8192;
const ROUNDS = 64;
const WARMUP_ROUNDS = 8;

export interface FaultBenchRow {
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

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
      rows.push({ mode, handler: v.name, medianM: med, bestM: Math.max(...rates), nsPerFault: 1000 / med, protectMs: median(v.protectMs) });
    }
  } finally {
    await guest.machine.powerOff();
  }
  return rows;
}

export async function benchFaults(): Promise<FaultBenchRow[]> {
  return [...(await benchMode(false)), ...(await benchMode(true))];
}

export function faultsMarkdown(rows: FaultBenchRow[]): string {
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
    '',
    '| mode | handler | median M faults/s | best M faults/s | ns per fault (median) | protect 8192 pages |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.mode} | ${r.handler} | ${r.medianM.toFixed(2)} | ${r.bestM.toFixed(2)} | ${r.nsPerFault.toFixed(0)} | ${r.protectMs.toFixed(2)} ms |`);
  }
  return `${lines.join('\n')}\n`;
}
