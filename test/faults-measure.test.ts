import { describe, expect, it } from 'vitest';
import { runFaults } from '../src/mmu/fault-run.ts';
import { guestImage, MiB } from './helpers.ts';

// What the slowdown is measured on (docs/V86.md, "What a faulting workload costs"):
// one guest, primed and warmed up once, the baseline and the protected run over the
// same ticks cut into the same slices. Deterministic mode: the guest clock is virtual,
// so the checks on it are exact. No speed is asserted.
describe('hiberlab faults measures the protected and unprotected runs alike', () => {
  it('one guest: priming, warm-up, then the baseline and the protected run over the same ticks and slices', async () => {
    const r = await runFaults({
      ramBytes: 32 * MiB, image: guestImage(), workload: 'churn:512K', seed: 2, policy: 'dirty-track',
      durationMs: 50, intervalMs: 20, warmupMs: 30, deterministic: true,
    });
    expect(r.config).toMatchObject({ durationMs: 50, intervalMs: 20, warmupMs: 30 });
    const prime = r.prime!;
    const base = r.baselineRun!;
    const prot = r.protectedRun;
    // With the JIT off no round makes v86 compile anything: one round settles it.
    expect(prime).toMatchObject({ slices: [2], settled: true, jitCompiles: 0 });
    expect(prime.faults).toBeGreaterThan(0);
    expect(base.slices).toEqual([2, 2, 1]);
    expect(prot.slices).toEqual(base.slices);
    expect(prot.ticks).toBe(5);
    expect(base.ticks).toBe(5);
    expect(r.rounds).toBe(3);
    // In this order, in the same guest: prime, warm-up, baseline, protected run.
    expect(base.startGuestMs).toBeGreaterThanOrEqual(prime.startGuestMs + prime.guestMs + 30 - 10);
    expect(prot.startGuestMs).toBeGreaterThanOrEqual(base.startGuestMs + base.guestMs);
    // The priming's faults and TLB work are not the measured run's.
    expect(base.faults).toBe(0);
    expect(prot.faults).toBeGreaterThan(0);
    expect(r.faults.total).toBeGreaterThanOrEqual(prot.faults);
    expect(r.tlb.batches).toBeLessThanOrEqual(r.rounds);
    expect(r.slowdown).toBeGreaterThan(0);
    expect(r.costPerFaultUs).toBeCloseTo((r.extraWallMs! * 1000) / prot.faults, 6);
    expect(r.verify.every((v) => v.badWords === 0)).toBe(true);
  });

  it('with nothing protected there is no fault and no cost per fault, but still a slowdown', async () => {
    // An idle guest has no workload buffers: scope "workload" is empty.
    const r = await runFaults({
      ramBytes: 32 * MiB, image: guestImage(), workload: 'idle', policy: 'count', scope: 'workload',
      durationMs: 30, intervalMs: 10, warmupMs: 20, deterministic: true,
    });
    expect(r.protectedPages).toBe(0);
    expect(r.prime).toMatchObject({ faults: 0, settled: true });
    expect(r.faults.total).toBe(0);
    expect(r.protectedRun.faults).toBe(0);
    expect(r.tlb).toEqual({ batches: 0, fullFlushes: 0, pagesInvalidated: 0 });
    expect(r.slowdown).toBeGreaterThan(0);
    expect(r.extraWallMs).toBeTypeOf('number');
    expect(r).not.toHaveProperty('costPerFaultUs');
  });
});
