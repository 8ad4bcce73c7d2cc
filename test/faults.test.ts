import { describe, expect, it } from 'vitest';
import { Guest } from '../src/machine/guest.ts';
import { GuestExceptionError } from '../src/machine/errors.ts';
import { FaultHandler, FaultLoopError, FaultPolicyError, type FaultPolicy } from '../src/mmu/faults.ts';
import { WriteProtector } from '../src/mmu/protect.ts';
import {
  CopyBeforeWritePolicy, CountPolicy, DenyPolicy, DirtyTrackPolicy, FREE_SLOT, PoolExhaustedError, WriteDeniedError, policyByName,
} from '../src/mmu/policies/index.ts';
import { guestImage, MiB } from './helpers.ts';
import { bootFrozen, useFrozenGuest, probe, PROBE_VALUE, type Frozen, type ProbeName } from './mmu-helpers.ts';

/** [pattern, byte offset into the first protected page, length, protected pages, expected faults] */
const PATTERNS: ReadonlyArray<[ProbeName, number, number, number, number]> = [
  ['WRITE_ONCE', 0, 0, 1, 1],
  ['WRITE_TWICE', 0, 0, 1, 1],
  ['READ_THEN_WRITE', 0, 0, 1, 1],
  ['REP_MOVS', 0, 8192, 2, 2],
  ['STRADDLE', 4094, 0, 2, 2],
  ['READ_ONLY', 0, 8192, 2, 0],
];

for (const largePages of [false, true]) {
  describe(`exact fault counts for known access patterns (${largePages ? '4 MiB pages, split first' : '4 KiB pages'})`, () => {
    let f!: Frozen;
    let protector!: WriteProtector;
    useFrozenGuest({ largePages }, (x) => {
      f = x;
      protector = new WriteProtector(f.guest);
    });

    for (const policyName of ['dirty-track', 'count'] as const) {
      for (const [pattern, offset, length, pages, expected] of PATTERNS) {
        it(`${pattern} → ${expected} fault${expected === 1 ? '' : 's'} (${policyName})`, async () => {
          const g = f.guest;
          const policy = policyByName(policyName, g, protector);
          const h = new FaultHandler(g, protector, policy, { trace: true }).install();
          try {
            const first = f.first + 8 * PATTERNS.findIndex((p) => p[0] === pattern);
            const pfns = Array.from({ length: pages }, (_, i) => first + i);
            protector.protect(pfns, pattern);
            await probe(g, pattern, first * 4096 + offset, length);
            expect(h.stats.faults).toBe(expected);
            expect(h.stats.handled).toBe(expected);
            expect(h.stats.notMine).toBe(0);
            expect([...h.stats.perPage.keys()]).toEqual(pfns.slice(0, expected));
            expect(h.trace!.map((e) => [e.pfn, e.taskId, e.decision])).toEqual(pfns.slice(0, expected).map((pfn) => [pfn, 1, 'retry']));
            if (expected > 0) expect(protector.isProtected(first)).toBe(false);
            if (policy instanceof DirtyTrackPolicy) expect([...policy.dirtyPfns()]).toEqual(pfns.slice(0, expected));
            if (largePages) expect(protector.splits).toBe(1);
            expect(protector.checkConsistency()).toEqual([]);
          } finally {
            h.uninstall();
            protector.unprotectAll();
            policy.dispose?.();
          }
        });
      }
    }
  });
}

describe('fault dispatch and the policies', () => {
  let f!: Frozen;
  useFrozenGuest({}, (x) => (f = x));

  it('the fault carries EIP, CR2, error code, the PTE, the reason and the writing task', async () => {
    const g = f.guest;
    const p = new WriteProtector(g);
    const seen: Parameters<FaultPolicy['onFault']>[0][] = [];
    const spy: FaultPolicy = {
      name: 'spy',
      onFault(fault, ctx) {
        seen.push(fault);
        ctx.protector.unprotect([fault.pfn]);
        return 'retry';
      },
    };
    const h = new FaultHandler(g, p, spy).install();
    try {
      const pfn = f.first + 60;
      p.protect([pfn], 'why not');
      await probe(g, 'WRITE_ONCE', pfn * 4096 + 8);
      expect(seen).toHaveLength(1);
      const fault = seen[0]!;
      expect(fault).toMatchObject({ errorCode: 3, cr2: pfn * 4096 + 8, pfn, write: true, present: true, reason: 'why not', taskId: 1, seq: 0 });
      expect(fault.pte >>> 12).toBe(pfn);
      expect(fault.pte & 2).toBe(0);
      expect(fault.pteAddr).toBe(p.pteOf(pfn)!.entryAddr);
      expect(fault.eip).toBeGreaterThanOrEqual(g.bootInfo.kernel_start);
      expect(fault.eip).toBeLessThan(g.bootInfo.kernel_end);
    } finally {
      h.uninstall();
      p.unprotectAll();
    }
  });

  it('copy-before-write keeps the original contents in a pool frame (guest memory), then lets the write through', async () => {
    const g = f.guest;
    const m = g.machine;
    const p = new WriteProtector(g);
    const policy = new CopyBeforeWritePolicy(g, p, { poolPages: 4 });
    const h = new FaultHandler(g, p, policy).install();
    try {
      const pfn = f.first + 70;
      const original = m.view(pfn * 4096, 4096).slice();
      p.protect([pfn], 'cow');
      await probe(g, 'WRITE_ONCE', pfn * 4096);
      expect(h.stats.faults).toBe(1);
      const copy = policy.copyOf(pfn)!;
      expect(policy.pool).toContain(copy);
      expect(Buffer.compare(m.view(copy * 4096, 4096), original)).toBe(0);
      expect(m.readU32(pfn * 4096)).toBe(PROBE_VALUE);
      expect(policy.slotOwner(policy.pool.indexOf(copy))).toBe(pfn);
      expect(() => p.protect([copy], 'x')).toThrow(/reserve pool/);
      expect(() => p.protect([policy.slotFrames[0]!], 'x')).toThrow(/slot table/);
      expect(policy.release(pfn)).toBe(true);
      expect(policy.slotOwner(policy.pool.indexOf(copy))).toBe(FREE_SLOT);
      expect(policy.poolFree).toBe(4);
    } finally {
      h.uninstall();
      p.unprotectAll();
      policy.dispose();
    }
  });

  it('copy-before-write stops with the numbers when the pool is exhausted, unless the strategy says what to do', async () => {
    const g = f.guest;
    const p = new WriteProtector(g);
    const exhausted: number[] = [];
    const policy = new CopyBeforeWritePolicy(g, p, {
      poolPages: 2,
      onPoolExhausted: (fault, ctx) => {
        exhausted.push(fault.pfn);
        ctx.protector.unprotect([fault.pfn]);
        return 'retry';
      },
    });
    const h = new FaultHandler(g, p, policy).install();
    try {
      const pfns = Array.from({ length: 5 }, (_, i) => f.first + 80 + i);
      p.protect(pfns, 'cow');
      await probe(g, 'WRITE_PAGES', pfns[0]! * 4096, 5 * 4096);
      expect(h.stats.faults).toBe(5);
      expect(policy.copies).toBe(2);
      expect(exhausted).toEqual(pfns.slice(2));
    } finally {
      h.uninstall();
      p.unprotectAll();
      policy.dispose();
    }
  });

  it('a policy that answers retry but leaves the page protected ends the run (it would fault forever)', async () => {
    const { guest: g, first } = await bootFrozen();
    try {
      const p = new WriteProtector(g);
      new FaultHandler(g, p, { name: 'lazy', onFault: () => 'retry' }).install();
      p.protect([first], 'x');
      const err = await probe(g, 'WRITE_ONCE', first * 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FaultLoopError);
      expect((err as Error).message).toMatch(new RegExp(`fault policy lazy answered 'retry' for PFN 0x${first.toString(16)} at EIP 0x[0-9a-f]{8} but left the page write-protected`));
      expect(g.machine.alive).toBe(false);
    } finally {
      await g.machine.powerOff();
    }
  });

  it('a policy that throws ends the run with its error as the cause', async () => {
    const { guest: g, first } = await bootFrozen();
    try {
      const p = new WriteProtector(g);
      new FaultHandler(g, p, { name: 'broken', onFault: () => { throw new Error('boom'); } }).install();
      p.protect([first], 'x');
      const err = await probe(g, 'WRITE_ONCE', first * 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FaultPolicyError);
      expect((err as Error).message).toMatch(/fault policy broken failed on the write to PFN .*: boom/);
    } finally {
      await g.machine.powerOff();
    }
  });

  it('copy-before-write with no exhaustion callback stops with a PoolExhaustedError giving the numbers', async () => {
    const { guest: g, first } = await bootFrozen();
    try {
      const p = new WriteProtector(g);
      new FaultHandler(g, p, new CopyBeforeWritePolicy(g, p, { poolPages: 1 })).install();
      p.protect([first, first + 1], 'cow');
      const err = await probe(g, 'WRITE_PAGES', first * 4096, 2 * 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolExhaustedError);
      expect((err as Error).message).toMatch(new RegExp(`reserve pool is exhausted \\(all 1 frames hold copies, 1 pages copied so far\\): cannot copy PFN 0x${(first + 1).toString(16)} .* at EIP 0x[0-9a-f]{8} by task 1 \\(pm\\)`));
    } finally {
      await g.machine.powerOff();
    }
  });
});

describe('deny and faults the harness did not cause', () => {
  it('deny: a planted stray write into a protected page ends the run with an error naming the PFN, the EIP and the task', async () => {
    const { guest: g, first } = await bootFrozen();
    try {
      const p = new WriteProtector(g);
      const h = new FaultHandler(g, p, new DenyPolicy()).install();
      const pfn = first + 7;
      p.protect([pfn], 'must not change');
      const err = await probe(g, 'WRITE_ONCE', pfn * 4096 + 12).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WriteDeniedError);
      const e = err as WriteDeniedError;
      expect(e.pfn).toBe(pfn);
      expect(e.taskId).toBe(1);
      expect(e.eip).toBeGreaterThanOrEqual(g.bootInfo.kernel_start);
      expect(e.eip).toBeLessThan(g.bootInfo.kernel_end);
      expect(e.message).toBe(
        `denied write to a protected page: PFN 0x${pfn.toString(16)} (address 0x${(pfn * 4096 + 12).toString(16).padStart(8, '0')}, protected as "must not change") at EIP 0x${e.eip.toString(16).padStart(8, '0')} by task 1 (pm)`,
      );
      expect(e.describe()).toContain('guest console');
      expect(h.stats).toMatchObject({ faults: 1, handled: 0, stopped: 1 });
      // The page is unchanged: the write never happened.
      expect(g.machine.readU32(pfn * 4096 + 12)).not.toBe(PROBE_VALUE);
      expect(g.machine.alive).toBe(false);
      await expect(g.machine.run()).rejects.toBe(err);
    } finally {
      await g.machine.powerOff();
    }
  });

  it('a fault the harness did not cause (a store to an unmapped address) still ends as GuestExceptionError, never swallowed', async () => {
    // crash=1: the pm task stores to 0xDEAD0000 (never mapped) right after READY.
    const g = await Guest.boot({ ramBytes: 32 * MiB, image: guestImage(), extraCmdline: 'crash=1' });
    let err: unknown;
    const p = new WriteProtector(g);
    const h = new FaultHandler(g, p, new CountPolicy()).install();
    try {
      p.protect([g.allocator.frameCount - 1], 'unrelated');
      err = await g.runTicks(50, { maxMs: 30_000 }).catch((e: unknown) => e);
      expect(h.stats).toMatchObject({ faults: 1, handled: 0, notMine: 1, stopped: 0 });
    } finally {
      await g.machine.powerOff();
    }
    expect(err).toBeInstanceOf(GuestExceptionError);
    const e = err as GuestExceptionError;
    expect(e.facts.vector).toBe(14);
    expect(e.facts.cr2).toBe(0xdead0000);
  });
});

describe('workloads under write protection', () => {
  for (const largePages of [false, true]) {
    it(`churn and stream run correctly under dirty-track protection of their buffers and verify their data (${largePages ? '4 MiB pages, split' : '4 KiB pages'})`, async () => {
      const g = await Guest.boot({ ramBytes: 32 * MiB, image: guestImage(), workload: 'churn:1M@2000,stream:512K@2000', seed: 11, largePages });
      try {
        await g.runTicks(3);
        const p = new WriteProtector(g);
        const policy = new DirtyTrackPolicy(g, p);
        const h = new FaultHandler(g, p, policy).install();
        const buffers = g.tasks().filter((t) => t.bufBase).flatMap((t) => Array.from({ length: t.bufBytes / 4096 }, (_, i) => (t.bufBase >>> 12) + i));
        p.protect(buffers, 'workload');
        expect(p.splits).toBe(largePages ? 1 : 0);
        const inBuffers = new Set(buffers);
        let faulted = 0;
        for (let round = 0; round < 4; round++) {
          await g.runTicks(3);
          const dirty = policy.dirtyPfns();
          expect(dirty.length).toBeGreaterThan(0);
          expect([...dirty].every((pfn) => inBuffers.has(pfn))).toBe(true);
          expect(dirty.every((pfn) => !p.isProtected(pfn))).toBe(true);
          faulted += dirty.length;
          policy.clear();
          p.protect(dirty, 'workload');
        }
        expect(h.stats.faults).toBe(faulted);
        expect(h.stats.notMine).toBe(0);
        const reports = await g.verifyNow();
        expect(reports.map((r) => [r.taskId, r.badWords])).toEqual([[2, 0], [3, 0]]);
        expect(p.checkConsistency()).toEqual([]);
        expect(g.allocator.checkInvariants()).toEqual([]);
      } finally {
        await g.machine.powerOff();
      }
    });
  }
});
