/**
 * The save catalog beyond swsusp, wp-full and cow: TuxOnIce's two pagesets (Nigel
 * Cunningham, with Kyle Moffett's selective thaw). Every save × every restore runs in
 * test/restore-catalog.test.ts; here, what is particular to each.
 */
import { describe, expect, it } from 'vitest';
import { hibernate, runCycle } from '../src/cycle.ts';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';

describe('two-pageset: pageset 2 written first, pageset 1 copied into its frames', () => {
  for (const [ram, workload, seed] of [
    [32, 'churn:2M@500,stream:4M,cache:4M,helper', 1],
    [32, 'idle', 2],
    [128, 'churn:8M@2000,stream:24M,cache:16M', 3],
    [512, 'churn:16M@2000,stream:160M,cache:32M,helper', 4],
  ] as const) {
    it(`${ram} MiB, ${workload}, seed ${seed}: passes the oracle; only pageset 1 is copied, into pageset 2's frames`, async () => {
      const r = await runCycle({ ramBytes: ram * MiB, workload, seed, save: 'two-pageset', image: guestImage(), imagePath: tempSwapPath(`tp-${ram}-${seed}`), warmupMs: 30 });
      expectPass(r);
      const s = r.save.stats as Record<string, number>;
      expect(s.pageset1Pages! + s.pageset2Pages!).toBe(r.save.pagesSaved);
      expect(r.save.atomicCopyPages).toBe(s.pageset1Pages);
      expect(s.pagesWrittenAgain).toBe(0); // nothing that stays frozen wrote into pageset 2
      expect(s.framesFromPageset2! + s.framesFromFree!).toBe(s.pageset1Pages);
      expect(s.framesFromPageset2).toBe(Math.min(s.pageset1Pages!, s.pageset2Pages!));
      if (workload !== 'idle') expect(s.pageset2Pages).toBeGreaterThan(s.pageset1Pages!);
      // The hibernation's own frames: the checksums, and copies beyond pageset 2 only.
      expect(r.save.snapshotFrames).toBe(s.checksumPages! + s.framesFromFree!);
      expect(s.tasksThawed).toBe(workload.includes('helper') ? 1 : 0);
    });
  }

  it('a task thawed on purpose writes into pageset 2 after its write: the checksums catch every changed page, written again at the atomic point', async () => {
    const r = await runCycle({ ramBytes: 32 * MiB, workload: 'churn:1M@2000,stream:4M,cache:4M,helper', seed: 5, save: 'two-pageset', saveOptions: { thawTask: 2 }, image: guestImage(), imagePath: tempSwapPath('tp-thaw'), warmupMs: 30 });
    expectPass(r);
    const s = r.save.stats as Record<string, number>;
    expect(s.tasksThawed).toBe(2);
    expect(s.liveTicks).toBeGreaterThan(0);
    // churn (task 2) rewrote its 1 MiB working set, 256 pages, while pageset 2 was written.
    expect(s.pagesWrittenAgain).toBeGreaterThan(200);
    expect(s.pagesWrittenAgain).toBeLessThanOrEqual(257);
  });

  it('has no half-of-RAM limit: a real save holds over 90 % of RAM, and resumes', async () => {
    const r = await runCycle({ ramBytes: 64 * MiB, workload: 'stream:60M@1', seed: 6, save: 'two-pageset', image: guestImage(), imagePath: tempSwapPath('tp-big'), warmupMs: 20 });
    expectPass(r);
    expect((r.save.pagesSaved * 4096) / (64 * MiB)).toBeGreaterThan(0.9);
    // swsusp refuses the same guest: its copies need as many free frames as pages.
    await expect(hibernate({ ramBytes: 64 * MiB, workload: 'stream:60M@1', seed: 6, save: 'swsusp', image: guestImage(), imagePath: tempSwapPath('sw-big'), warmupMs: 20 })).rejects.toThrow(/cannot hibernate/);
  });
});
