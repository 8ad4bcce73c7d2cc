/**
 * The restore catalog: every save strategy × every restore strategy passes the complete
 * oracle; eat-unsafe and one-shot on the same image, side by side; refusals before any
 * guest memory is touched, the image still resumable.
 */
import { copyFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hibernate, resume, runCycle } from '../src/cycle.ts';
import { RESTORE_STRATEGIES, SAVE_STRATEGIES } from '../src/strategies.ts';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';

// The cache is read at boot: a boot kernel has it too (what compare-on-load finds equal).
const WORKLOAD = 'churn:1M@500,stream:1M,cache:2M@boot';

describe('every save strategy × every restore strategy passes the complete oracle', () => {
  for (const save of SAVE_STRATEGIES.keys()) {
    for (const restore of RESTORE_STRATEGIES.keys()) {
      it(`${save} → ${restore}`, async () => {
        // The reserved restore needs both kernels booted with a reserved region.
        const reserveBytes = restore === 'reserved' ? 8 * MiB : undefined;
        const r = await runCycle({ ramBytes: 32 * MiB, workload: WORKLOAD, seed: 31, save, restore, reserveBytes, image: guestImage(), imagePath: tempSwapPath(`${save}-${restore}`), warmupMs: 30 });
        expectPass(r);
        expect(r.restore!.strategy).toBe(restore);
        expect(r.restore!.inPlacePages + r.restore!.pbes + r.restore!.unchangedPages).toBe(r.save.pagesSaved);
        if (restore !== 'compare-on-load') expect(r.restore!.unchangedPages).toBe(0);
      });
    }
  }
});

describe('eat-unsafe and one-shot on the same image', () => {
  it('one-shot loads most pages in place and allocates once; eat-unsafe eats the unsafe frames it meets and copies every page', async () => {
    const path = tempSwapPath('same');
    const h = await hibernate({ ramBytes: 64 * MiB, workload: 'stream:20M,cache:4M', seed: 32, image: guestImage(), imagePath: path, warmupMs: 30 });
    const copy = tempSwapPath('same-copy');
    copyFileSync(path, copy);
    const eat = await resume({ imagePath: path, oracle: h.oracle, image: guestImage(), restore: 'eat-unsafe', verifyReportsExpected: h.verifyReportsExpected });
    const one = await resume({ imagePath: copy, oracle: h.oracle, image: guestImage(), restore: 'one-shot', verifyReportsExpected: h.verifyReportsExpected });
    for (const r of [eat, one]) {
      expect(r.check!.failures).toEqual([]);
      expect(r.check!.verdict).toBe('pass');
    }
    const pages = h.save.pagesSaved;
    const e = eat.restore!;
    const o = one.restore!;
    expect(e.inPlacePages).toBe(0);
    expect(e.pbes).toBe(pages);
    expect(e.stats.copies).toBe(pages);
    expect(e.stats.pagesEaten).toBeGreaterThan(pages / 2); // the boot kernel's low free frames are mostly original locations
    expect(e.stats.allocations).toBe((e.stats.pagesEaten as number) + pages + Math.ceil(pages / 341) + 1);
    // one-shot: one allocation of what the image needs; the original locations among them take their own pages.
    expect(o.stats.allocations).toBe(pages + Math.ceil(pages / 341) + 1);
    expect(o.inPlacePages + o.pbes).toBe(pages);
    expect(o.pbes).toBeLessThan(pages / 4);
    // What one-shot says eat-unsafe would do on this boot kernel is what eat-unsafe did.
    expect(o.stats.eatUnsafeAllocations).toBe(e.stats.allocations);
    expect(o.stats.copiesAvoided).toBe(pages - o.pbes);
  });
});

describe('reserved: the boot kernel lives in its region, everything outside loads in place', () => {
  it('only pages whose frames the boot kernel uses inside the region go through PBEs; the rest load in place', async () => {
    const r = await runCycle({ ramBytes: 64 * MiB, workload: 'churn:2M@500,stream:8M,cache:4M', seed: 34, restore: 'reserved', reserveBytes: 8 * MiB, image: guestImage(), imagePath: tempSwapPath('reserved'), warmupMs: 30 });
    expectPass(r);
    const s = r.restore!.stats as Record<string, number>;
    expect(s.regionPages).toBe(2048);
    expect(s.pagesOutsideRegion).toBeGreaterThan(3000); // the workloads, allocated above the region after a normal boot
    expect(r.restore!.pbes).toBeLessThanOrEqual(s.pagesInsideRegion!);
    expect(r.restore!.pbes).toBeLessThanOrEqual(s.regionUsed!);
    expect(r.restore!.inPlacePages).toBeGreaterThanOrEqual(s.pagesOutsideRegion!);
  });

  it('a region too small for the safe pages its pages need is refused with the numbers, untouched; without a region too', async () => {
    const path = tempSwapPath('tiny');
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500', seed: 35, image: guestImage(), imagePath: path, warmupMs: 30, reserveBytes: 0x180000 });
    const tiny = await resume({ imagePath: path, image: guestImage(), restore: 'reserved', reserveBytes: 0x180000, proveUntouched: true });
    expect(tiny.status).toBe('refused');
    expect(tiny.reason).toMatch(/^cannot restore with reserved: \d+ image pages have their original frame inside the reserved region \(1\.5 MiB\) in use by the boot kernel; they need \d+ safe frames there \(with \d+ PBE pages and a trampoline page\), but only \d+ free frames of the region are not original locations$/);
    expect(tiny.guestMemoryUntouched).toBe(true);
    const none = await resume({ imagePath: path, image: guestImage(), restore: 'reserved', proveUntouched: true });
    expect(none.status).toBe('refused');
    expect(none.reason).toMatch(/the boot kernel has no reserved region/);
    const r = await resume({ imagePath: path, oracle: h.oracle, image: guestImage(), restore: 'bitmap-pbe', reserveBytes: 0x180000, verifyReportsExpected: h.verifyReportsExpected });
    expect(r.check!.verdict).toBe('pass');
  });
});

describe('compare-on-load: the boot kernel runs on while the image is loaded', () => {
  const workload = 'cache:8M@boot,churn:2M@500,stream:4M';
  it('skips the pages the boot kernel holds identical, keeps a copy of those it changes after their comparison, restores the rest atomically', async () => {
    const r = await runCycle({ ramBytes: 64 * MiB, workload, seed: 36, restore: 'compare-on-load', image: guestImage(), imagePath: tempSwapPath('col'), warmupMs: 30 });
    expectPass(r);
    const rs = r.restore!;
    const s = rs.stats as Record<string, number>;
    // The boot kernel read the same 2048 cache pages at boot and has the same kernel text: most compared pages are equal.
    expect(s.pagesSkipped).toBeGreaterThan(2048 - (s.ticksRun ?? 0));
    expect(s.pagesCompared).toBe(s.pagesSkipped! + rs.pbes);
    expect(s.restoredAtomically).toBe(rs.pbes);
    expect(rs.unchangedPages).toBe(s.pagesSkipped);
    expect(rs.inPlacePages + rs.pbes + rs.unchangedPages).toBe(r.save.pagesSaved);
    // kcached reads other data into one cache page a tick; the ticks after the last comparison all hit compared, identical pages.
    expect(s.ticksRun).toBeGreaterThanOrEqual(5);
    expect(s.changedAfterProtection).toBeGreaterThanOrEqual(5);
    expect(s.changedAfterProtection! + s.dirtiedBeforeCompare!).toBeLessThanOrEqual(s.ticksRun! + 1);
    expect(s.unprotectable).toBeGreaterThan(0); // page tables, stacks, the allocator's maps
  });

  it('without write protection the pages changed after their comparison are lost, and the oracle names them', async () => {
    const r = await runCycle({ ramBytes: 64 * MiB, workload, seed: 36, restore: 'compare-on-load', restoreOptions: { protect: false }, image: guestImage(), imagePath: tempSwapPath('col-np'), warmupMs: 30 });
    expect(r.verdict).toBe('fail');
    const differing = r.oracle!.memory!.differingPages;
    expect(differing.length).toBeGreaterThanOrEqual(5);
    expect(new Set(differing.map((d) => d.owner))).toEqual(new Set(['cache']));
    expect(r.verify.find((v) => v.workload === 'cache')!.badWords).toBeGreaterThan(0);
  });
});

describe('highmem: kernels that map only lowmem for good', () => {
  const lowmemBytes = 24 * MiB; // less than half of the 64 MiB
  const workload = 'churn:2M@500,stream:4M,cache:16M@boot';

  it('bitmap-pbe copies lowmem pages in a trampoline with paging on, highmem pages in the boot kernel before it; other restores copy with paging off', async () => {
    const path = tempSwapPath('highmem');
    const h = await hibernate({ ramBytes: 64 * MiB, workload, seed: 37, lowmemBytes, image: guestImage(), imagePath: path, warmupMs: 30 });
    const copy = tempSwapPath('highmem-copy');
    copyFileSync(path, copy);
    const r = await resume({ imagePath: path, oracle: h.oracle, image: guestImage(), lowmemBytes, workload: h.workload, seed: h.seed, verifyReportsExpected: h.verifyReportsExpected });
    expect(r.check!.failures).toEqual([]);
    expect(r.check!.verdict).toBe('pass');
    const s = r.restore!.stats as Record<string, number>;
    // The boot kernel read its 4096 cache pages at boot into highmem: the image's pages there go through the second list.
    expect(s.highmemPbes).toBeGreaterThanOrEqual(4096);
    expect(s.lowmemPbes).toBeGreaterThan(0);
    expect(s.lowmemPbes! + s.highmemPbes!).toBe(r.restore!.pbes);
    expect(s.highmemCopiesInLowmem).toBe(0);
    expect(r.trampolineCpu!.paging).toBe(true);
    expect(r.trampolineCpu!.cr3).toBeLessThan(lowmemBytes);
    expect(r.console).toMatch(/resume: (\d+) highmem pages copied/);
    expect(Number(/resume: (\d+) highmem pages copied/.exec(r.console)![1])).toBe(s.highmemPbes);

    const other = await resume({ imagePath: copy, oracle: h.oracle, image: guestImage(), restore: 'one-shot', lowmemBytes, workload: h.workload, seed: h.seed, verifyReportsExpected: h.verifyReportsExpected });
    expect(other.check!.verdict).toBe('pass');
    expect(other.trampolineCpu!.paging).toBe(false);
  });

  it('the cache lives in highmem, out of the page tables; live saves copy it atomically, as pages they cannot protect', async () => {
    for (const save of ['wp-full', 'cow']) {
      const r = await runCycle({ ramBytes: 64 * MiB, workload: 'churn:2M@500,stream:4M,cache:16M', seed: 38, save, lowmemBytes, image: guestImage(), imagePath: tempSwapPath(`highmem-${save}`), warmupMs: 30 });
      expectPass(r);
      expect(r.save.atomicCopyPages).toBeGreaterThanOrEqual(4096);
    }
  });
});

describe('a restore that cannot be satisfied is refused before any guest memory is touched, and the image stays resumable', () => {
  it('eat-unsafe refuses an image larger than the safe frames it can find; bitmap-pbe then resumes it', async () => {
    const path = tempSwapPath('big');
    // wp-full saves more than half of RAM: more pages than there are safe frames for eat-unsafe.
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'stream:20M@1', save: 'wp-full', seed: 33, image: guestImage(), imagePath: path, warmupMs: 30 });
    const refused = await resume({ imagePath: path, image: guestImage(), restore: 'eat-unsafe', proveUntouched: true });
    expect(refused.status).toBe('refused');
    expect(refused.errorCode).toBe('RESTORE_REFUSED');
    expect(refused.reason).toMatch(/^cannot restore with eat-unsafe: every one of the \d+ image pages needs a safe page, plus \d+ PBE pages and a trampoline page \(\d+ in all\), but only \d+ free frames are not original locations of image pages$/);
    expect(refused.guestMemoryUntouched).toBe(true);
    expect(refused.signatureReset).toBe(false);
    const r = await resume({ imagePath: path, oracle: h.oracle, image: guestImage(), restore: 'bitmap-pbe', verifyReportsExpected: h.verifyReportsExpected });
    expect(r.check!.failures).toEqual([]);
    expect(r.check!.verdict).toBe('pass');
  });
});
