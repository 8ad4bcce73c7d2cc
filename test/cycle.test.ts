import { existsSync, rmSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hibernate, resume, runCycle, runLineage, swapBytesFor } from '../src/cycle.ts';
import { CrcThread } from '../src/image/crc-thread.ts';
import { SwapDevice } from '../src/image/index.ts';
import { Guest } from '../src/machine/guest.ts';
import { silentProgress } from '../src/metrics/progress.ts';
import { swsusp } from '../src/save/swsusp.ts';
import { runSave } from '../src/save/session.ts';
import { HibernationRefusedError } from '../src/save/strategy.ts';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';

describe('swsusp save + bitmap-pbe restore cycles pass the oracle', () => {
  for (const [ram, workload, reports] of [
    [32, 'churn:4M@2000', 1],
    [32, 'stream:8M', 1],
    [128, 'churn:16M@5000,cache:8M', 2],
    [128, 'stream:32M,churn:8M', 2],
  ] as const) {
    it(`${ram} MiB, ${workload}`, async () => {
      const r = await runCycle({ ramBytes: ram * MiB, workload, seed: 11, image: guestImage(), imagePath: tempSwapPath() });
      expectPass(r);
      expect(r.verify.length).toBe(reports);
      // The VGA window (not RAM: 0xA0000-0xBFFFF) is in use but never saved.
      expect(r.save.memory.nosaveFrames).toBe(32);
      // The trampoline copied what could not be loaded in place: at least the kernel's own frames.
      expect(r.restore!.pbes).toBeGreaterThan(0);
    });
  }

  it('4 MiB-page guests cycle too; a swap device hiberlab made itself is removed afterwards, a given one is kept', async () => {
    const r = await runCycle({ ramBytes: 32 * MiB, workload: 'churn:2M@1000', largePages: true, image: guestImage() });
    expectPass(r);
    expect(existsSync(r.config.imagePath)).toBe(false);
    const kept = tempSwapPath();
    expectPass(await runCycle({ ramBytes: 32 * MiB, workload: 'idle', image: guestImage(), imagePath: kept }));
    expect(existsSync(kept)).toBe(true);
    // The given device has all its blocks, as Linux wants of a swap file.
    expect(statSync(kept).blocks * 512).toBeGreaterThanOrEqual(swapBytesFor(32 * MiB));
  });

  it('the temporary swap device of one cycle stays sparse: only the image has blocks', async () => {
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'stream:4M', seed: 2, image: guestImage(), warmupMs: 20 });
    try {
      const st = statSync(h.imagePath);
      expect(st.size).toBe(swapBytesFor(32 * MiB));
      expect(st.blocks * 512).toBeGreaterThan(4 * MiB);
      expect(st.blocks * 512).toBeLessThan(st.size / 2);
    } finally {
      rmSync(h.imagePath, { force: true });
    }
  });

  it('five cycles in a row of one guest lineage pass, each resumed kernel hibernated again', async () => {
    const reports = await runLineage(5, { ramBytes: 32 * MiB, workload: 'churn:2M@1000,stream:2M', seed: 5, image: guestImage(), warmupMs: 50 });
    expect(reports.length).toBe(5);
    for (const r of reports) expectPass(r);
    // Each cycle resumed the kernel hibernated by the one before: generations 1..5.
    expect(reports.map((r) => r.generation)).toEqual([1, 2, 3, 4, 5]);
    expect(existsSync(reports[0]!.config.imagePath)).toBe(false);
  });

  it('resume() checks CRCs on a CRC thread it is given and leaves it open for the next resume', async () => {
    // How runCycle and runLineage resume: their thread is started with the cycle, so it is
    // up before the boot kernel boots (one started with the boot came up about 100 ms later).
    const thread = CrcThread.start();
    const imagePath = tempSwapPath();
    try {
      for (let i = 0; i < 2; i++) {
        const h = await hibernate({ ramBytes: 32 * MiB, workload: 'stream:4M', seed: 3, image: guestImage(), imagePath, warmupMs: 50 });
        const r = await resume({ imagePath, oracle: h.oracle, ramBytes: h.ramBytes, image: guestImage(), crcThread: thread });
        expect(r.status).toBe('resumed');
        expect(r.check!.verdict).toBe('pass');
        expect(r.check!.memory!.differingPages).toEqual([]);
        expect(r.validationScan!.crcThreadChunks).toBeGreaterThan(0);
        expect(thread.failure).toBeUndefined();
        expect(thread.available).toBe(true);
      }
    } finally {
      await thread.close();
    }
    expect(thread.failure).toBe('it was closed');
  });
});

describe('the half-of-RAM limit emerges from the allocator', () => {
  it('a guest using more than half of RAM, with nothing to drop, is refused with the numbers and keeps running', async () => {
    const path = tempSwapPath();
    const swap = SwapDevice.ensure(path, swapBytesFor(32 * MiB));
    const guest = await Guest.boot({ ramBytes: 32 * MiB, workload: 'stream:18M', image: guestImage(), swapPath: path });
    const err = await runSave(swsusp, {}, { guest, swap, progress: silentProgress }).catch((e) => e);
    // Nothing was lost: the tasks were thawed, run on and their data verifies; no image was written.
    const ticks = guest.ticks;
    await guest.runTicks(5);
    expect(guest.ticks).toBeGreaterThanOrEqual(ticks + 5);
    const [v] = await guest.verifyNow();
    expect(v!.badWords).toBe(0);
    expect(swap.readSignature().kind).toBe('swap');
    expect(guest.allocator.checkInvariants()).toEqual([]);
    swap.close();
    await guest.machine.powerOff();
    expect(err).toBeInstanceOf(HibernationRefusedError);
    const e = err as HibernationRefusedError;
    expect(e.message).toMatch(/^cannot hibernate: \d+ saveable pages need as many free frames for their atomic copies plus \d+ for the memory bitmaps \(\d+ in all\), but only \d+ of 8192 frames are free$/);
    expect(e.code).toBe('HIBERNATION_REFUSED');
    expect(e.facts.needed).toBeGreaterThan(e.facts.free!);
    expect(e.facts.frames).toBe(8192);
    // The pages in use need as many copies: more than half of RAM is asked for.
    expect(e.facts.needed!).toBeGreaterThan(4096);
  });

  it('with a reclaimable cache, swsusp drops just enough cache pages and passes', async () => {
    const r = await runCycle({ ramBytes: 32 * MiB, workload: 'stream:8M,cache:12M', image: guestImage(), imagePath: tempSwapPath() });
    expectPass(r);
    expect(r.save.cachePagesDropped).toBeGreaterThan(0);
    expect(r.save.cachePagesDropped).toBeLessThan(3072);
    // After dropping, the copies fit: used + copies <= frames.
    expect(r.save.memory.usedAtAtomic).toBeLessThanOrEqual(8192);
  });
});
