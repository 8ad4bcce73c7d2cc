import { describe, expect, it } from 'vitest';
import { OWNERS } from '../src/abi.ts';
import { PTE, PageTableWalker, describeEntry, entryFlags } from '../src/mmu/page-table.ts';
import { ForbiddenPageError, WriteProtector } from '../src/mmu/protect.ts';
import { FaultHandler } from '../src/mmu/faults.ts';
import { CountPolicy, DirtyTrackPolicy } from '../src/mmu/policies/index.ts';
import { useFrozenGuest, probe, PROBE_VALUE, type Frozen } from './mmu-helpers.ts';

describe('WriteProtector on 4 KiB pages', () => {
  let f!: Frozen;
  useFrozenGuest({}, (x) => (f = x));

  it('the walker reads the PTE bits (present, R/W, U/S, accessed, dirty) and changes them in guest memory', async () => {
    const m = f.guest.machine;
    const walker = new PageTableWalker(m);
    const pfn = f.first + 40;
    await probe(f.guest, 'WRITE_ONCE', pfn * 4096); // the CPU sets A and D on the walk
    const map = walker.translate(pfn * 4096)!;
    expect(entryFlags(map.entry)).toEqual({ present: true, writable: true, user: false, accessed: true, dirty: true, pageSize: false, global: false });
    expect(describeEntry(map.entry)).toBe(`0x${map.entry.toString(16).padStart(8, '0')} (frame 0x${pfn.toString(16)}, P RW A D)`);
    const before = walker.updateEntry(pfn * 4096, 0, PTE.ACCESSED | PTE.DIRTY)!;
    expect(before.entry).toBe(map.entry);
    expect(entryFlags(m.readU32(map.entryAddr))).toMatchObject({ accessed: false, dirty: false, writable: true });
    expect(walker.updateEntry(32 * 1024 * 1024, PTE.WRITABLE, 0)).toBeUndefined();
  });

  it('clears and sets the R/W bit of the PTE in guest memory (the PTE is the truth) and keeps a matching host view', () => {
    const p = new WriteProtector(f.guest);
    const pfns = [f.first, f.first + 1, f.first + 5];
    const walker = new PageTableWalker(f.guest.machine);
    p.protect(pfns, 'test');
    for (const pfn of pfns) {
      const map = walker.translate(pfn * 4096)!;
      expect(map.entry & (PTE.PRESENT | PTE.WRITABLE)).toBe(PTE.PRESENT);
      expect(f.guest.machine.readU32(map.entryAddr)).toBe(map.entry);
      expect(p.isProtected(pfn)).toBe(true);
      expect(p.reason(pfn)).toBe('test');
      expect(p.pteOf(pfn)!.entryAddr).toBe(map.entryAddr);
    }
    expect(walker.translate((f.first + 2) * 4096)!.entry & PTE.WRITABLE).toBe(PTE.WRITABLE);
    expect(p.protectedCount).toBe(3);
    expect([...p.protectedPfns()]).toEqual(pfns);
    expect(p.checkConsistency()).toEqual([]);
    p.unprotect([f.first + 1]);
    expect(walker.translate((f.first + 1) * 4096)!.entry & PTE.WRITABLE).toBe(PTE.WRITABLE);
    expect(p.isProtected(f.first + 1)).toBe(false);
    p.unprotectAll();
    expect(p.protectedCount).toBe(0);
    for (const pfn of pfns) expect(walker.translate(pfn * 4096)!.entry & PTE.WRITABLE).toBe(PTE.WRITABLE);
    expect(p.checkConsistency()).toEqual([]);
  });

  it('lifts its read-only bits in a copy of the page tables and leaves the live PTEs protected', () => {
    const m = f.guest.machine;
    const p = new WriteProtector(f.guest);
    const pfns = [f.first + 7, f.first + 9];
    p.protect(pfns, 'test');
    const tables = pfns.map((pfn) => p.pteOf(pfn)!.entryAddr >>> 12);
    // A copy of all RAM as u32 words, each page table at its own frame (as in the oracle).
    const copy = m.ram32.slice();
    const at = new Int32Array(m.ram32.length >>> 10).fill(-1);
    const missing = at.slice();
    for (const t of tables) at[t] = t;
    expect(() => p.liftInto(copy, missing, pfns)).toThrow(/has no copy/);
    expect(() => p.liftInto(copy, at, [pfns[0]!])).toThrow(/2 frames are protected, 1 of them/);
    expect(p.liftInto(copy, at, pfns)).toBe(2);
    for (const pfn of pfns) {
      const addr = p.pteOf(pfn)!.entryAddr;
      expect(copy[addr >>> 2]).toBe((m.readU32(addr) | PTE.WRITABLE) >>> 0);
      expect(m.readU32(addr) & PTE.WRITABLE).toBe(0);
      expect(p.isProtected(pfn)).toBe(true);
    }
    p.unprotectAll();
  });

  it('a missing flush lets a write through a stale writable TLB entry; protect() always flushes, so the same write then faults', async () => {
    const g = f.guest;
    const m = g.machine;
    const p = new WriteProtector(g);
    const h = new FaultHandler(g, p, new CountPolicy()).install();
    try {
      const pfn = f.first + 10;
      const addr = pfn * 4096;
      // The write leaves a writable TLB entry for the page.
      await probe(g, 'WRITE_ONCE', addr);
      // Clear R/W by hand, without a flush: the CPU still uses its stale writable entry.
      const pteAddr = p.pteOf(pfn)!.entryAddr;
      m.writeU32(pteAddr, m.readU32(pteAddr) & ~PTE.WRITABLE);
      await probe(g, 'WRITE_TWICE', addr);
      expect(h.stats.faults).toBe(0);
      expect(m.readU32(addr)).toBe(~PROBE_VALUE >>> 0); // the write went through a read-only PTE
      // Undo, and protect through the layer: the same write faults.
      m.writeU32(pteAddr, m.readU32(pteAddr) | PTE.WRITABLE);
      p.protect([pfn], 'test');
      await probe(g, 'WRITE_ONCE', addr);
      expect(h.stats.faults).toBe(1);
      expect(m.readU32(addr)).toBe(PROBE_VALUE);
      expect(p.tlb).toEqual({ batches: 1, fullFlushes: 0, pagesInvalidated: 1 });
    } finally {
      h.uninstall();
      p.unprotectAll();
    }
  });

  it('never forgets the flush: every protected page with a stale writable TLB entry faults, with per-page invalidation and with a full flush', async () => {
    const g = f.guest;
    for (const [count, expected] of [[8, { batches: 1, fullFlushes: 0, pagesInvalidated: 8 }], [40, { batches: 1, fullFlushes: 1, pagesInvalidated: 0 }]] as const) {
      const p = new WriteProtector(g, { invlpgLimit: 16 });
      const h = new FaultHandler(g, p, new CountPolicy()).install();
      try {
        const pfns = Array.from({ length: count }, (_, i) => f.first + 100 + i);
        await probe(g, 'WRITE_PAGES', pfns[0]! * 4096, count * 4096); // every page gets a writable TLB entry
        const calls = { flushTlb: 0, invalidatePage: 0 };
        const m = g.machine;
        const flush = m.flushTlb.bind(m);
        const inval = m.invalidatePage.bind(m);
        m.flushTlb = () => { calls.flushTlb++; flush(); };
        m.invalidatePage = (linear: number) => { calls.invalidatePage++; inval(linear); };
        try {
          p.protect(pfns, 'test');
        } finally {
          m.flushTlb = flush;
          m.invalidatePage = inval;
        }
        expect(p.tlb).toEqual(expected);
        expect(calls).toEqual({ flushTlb: expected.fullFlushes, invalidatePage: expected.pagesInvalidated });
        await probe(g, 'WRITE_PAGES', pfns[0]! * 4096, count * 4096);
        expect(h.stats.faults).toBe(count);
        expect([...h.stats.perPage.keys()].sort((a, b) => a - b)).toEqual(pfns);
      } finally {
        h.uninstall();
        p.unprotectAll();
      }
    }
  });

  it('unprotect needs no flush: after the policy sets R/W back, the retried write succeeds once, with no second fault', async () => {
    const g = f.guest;
    const p = new WriteProtector(g);
    const h = new FaultHandler(g, p, new CountPolicy()).install();
    try {
      const pfn = f.first + 20;
      await probe(g, 'READ_ONLY', pfn * 4096, 64); // a read-only TLB entry exists too
      p.protect([pfn], 'test');
      await probe(g, 'WRITE_TWICE', pfn * 4096);
      expect(h.stats.faults).toBe(1);
      expect(g.machine.readU32(pfn * 4096)).toBe(~PROBE_VALUE >>> 0);
    } finally {
      h.uninstall();
      p.unprotectAll();
    }
  });

  describe('refuses pages that #PF delivery or the fault bookkeeping needs, naming the page and why, and changes nothing', () => {
    const refused = (p: WriteProtector, bad: number, why: RegExp) => {
      const ok = [f.first + 30, f.first + 31];
      const before = ok.map((pfn) => p.pteOf(pfn)!.entry);
      let err: unknown;
      try {
        p.protect([ok[0]!, bad, ok[1]!], 'test');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ForbiddenPageError);
      const e = err as ForbiddenPageError;
      expect(e.pfn).toBe(bad);
      expect(e.why).toMatch(why);
      expect(e.message).toContain(`PFN 0x${bad.toString(16)}`);
      expect(e.message).toMatch(why);
      expect(p.protectedCount).toBe(0);
      expect(ok.map((pfn) => p.pteOf(pfn)!.entry)).toEqual(before);
      expect(p.pteOf(bad)!.entry & PTE.WRITABLE).toBe(PTE.WRITABLE);
      expect(p.tlb.batches).toBe(0);
    };

    it('a task stack page', () => {
      const p = new WriteProtector(f.guest);
      const pm = f.guest.tasks().find((t) => t.kind === 'pm')!;
      const stackPage = (pm.stackBase >>> 12) + 2;
      refused(p, stackPage, /kernel stack of task 1 \(pm\).*#PF delivery pushes/);
      expect(p.forbidden().get(stackPage)).toMatch(/kernel stack/);
    });

    it('the IDT page', () => {
      const p = new WriteProtector(f.guest);
      const idt = f.guest.machine.descriptorTables().idtBase;
      expect(idt).toBe(f.guest.bootInfo.idt_base);
      refused(p, idt >>> 12, /the IDT/);
    });

    it('a page-table frame and the page directory', () => {
      const p = new WriteProtector(f.guest);
      const tables = new PageTableWalker(f.guest.machine).tableFrames();
      expect(f.guest.allocator.owner(tables[1]!)).toBe(OWNERS.PAGETABLE.value);
      refused(p, tables[1]!, /page table/);
      refused(p, tables[0]!, /page directory/);
    });

    it('the GDT and TSS pages', () => {
      const p = new WriteProtector(f.guest);
      refused(p, f.guest.bootInfo.gdt_base >>> 12, /GDT/);
      refused(p, f.guest.bootInfo.tss_base >>> 12, /TSS|GDT|IDT/);
    });

    it('the fault bitmap of dirty-track', () => {
      const p = new WriteProtector(f.guest);
      const policy = new DirtyTrackPolicy(f.guest, p);
      try {
        expect(f.guest.allocator.owner(policy.frames[0]!)).toBe(OWNERS.SNAPSHOT.value);
        refused(p, policy.frames[0]!, /fault bitmap/);
      } finally {
        policy.dispose();
      }
      expect(p.whyForbidden(policy.frames[0]!)).toBeUndefined();
    });

    it('the allocator bitmap', () => {
      const p = new WriteProtector(f.guest);
      refused(p, f.guest.allocator.layout.bitmap >>> 12, /allocator/);
    });
  });
});

describe('WriteProtector on 4 MiB pages (pages=4m)', () => {
  let f!: Frozen;
  useFrozenGuest({ largePages: true }, (x) => (f = x));

  it('splits the 4 MiB page into a page table from the guest allocator with the same rights, then protects one 4 KiB page', async () => {
    const g = f.guest;
    const m = g.machine;
    const pfn = f.first + 3;
    const walker = new PageTableWalker(m);
    const before = walker.translate(pfn * 4096)!;
    expect(before.size).toBe(4 << 20);
    expect(entryFlags(before.entry)).toMatchObject({ present: true, writable: true, pageSize: true });
    const freeBefore = g.allocator.freeCount;
    const p = new WriteProtector(g);
    const h = new FaultHandler(g, p, new CountPolicy()).install();
    try {
      p.protect([pfn], 'test');
      expect(p.splits).toBe(1);
      expect(g.allocator.freeCount).toBe(freeBefore - 1);
      const after = walker.translate(pfn * 4096)!;
      expect(after.size).toBe(4096);
      expect(after.physical).toBe(pfn * 4096);
      expect(after.entry & (PTE.PRESENT | PTE.WRITABLE)).toBe(PTE.PRESENT);
      const pde = m.readU32(before.entryAddr);
      expect(pde & PTE.PAGE_SIZE).toBe(0);
      const table = pde >>> 12;
      expect(g.allocator.owner(table)).toBe(OWNERS.PAGETABLE.value);
      expect(p.whyForbidden(table)).toMatch(/split/);
      // Every other page of the 4 MiB region maps where it did, writable.
      const base = before.physical;
      for (let i = 0; i < 1024; i++) {
        const pte = m.readU32(table * 4096 + i * 4);
        expect(pte >>> 12).toBe((base >>> 12) + i);
        expect(pte & PTE.WRITABLE).toBe((base >>> 12) + i === pfn ? 0 : PTE.WRITABLE);
      }
      await probe(g, 'WRITE_ONCE', pfn * 4096);
      expect(h.stats.faults).toBe(1);
      // A second protect in the same region needs no second split.
      p.protect([pfn + 1], 'test');
      expect(p.splits).toBe(1);
      expect(p.checkConsistency()).toEqual([]);
    } finally {
      h.uninstall();
      p.unprotectAll();
    }
  });
});
