import { describe, expect, it } from 'vitest';
import { hibernate, runCycle } from '../src/cycle.ts';
import { HibernationRefusedError } from '../src/save/strategy.ts';
import type { PrecopyRound } from '../src/declarations.ts';
import { PageSetBits } from '../src/save/common.ts';
import { unprotectedAtAtomic } from '../src/save/wp-full.ts';
import type { GuestAllocator } from '../src/machine/allocator.ts';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';
import { swapBytesFor } from '../src/cycle.ts';
import { fieldOffset } from '../src/abi.ts';
import { SwapDevice } from '../src/image/index.ts';
import { Guest } from '../src/machine/guest.ts';
import type { TaskInfo } from '../src/machine/guest-structs.ts';
import { silentProgress } from '../src/metrics/progress.ts';
import { runSave } from '../src/save/session.ts';
import { saveStrategy } from '../src/strategies.ts';

const cycle = (save: string, ramMiB: number, workload: string, seed: number, extra: object = {}) =>
  runCycle({ ramBytes: ramMiB * MiB, workload, seed, save, image: guestImage(), imagePath: tempSwapPath(save), warmupMs: 50, ...extra });

describe('wp-full and cow cycles pass the oracle (restore: bitmap-pbe)', () => {
  for (const save of ['wp-full', 'cow']) {
    // The stream moves on 2 KB per tick: with the default disk (640 pages a tick) the save
    // is over in two ticks, often before it reaches a page not yet written (cow unprotects
    // what it wrote), so it gets a slower disk and ten ticks.
    for (const [ram, workload, seed, saveOptions] of [
      [32, 'churn:2M@1000', 1, {}],
      [32, 'churn:2M@1000', 2, {}],
      [32, 'stream:2M@500', 3, { io: 32 }],
      [32, 'idle', 4, {}],
      [64, 'churn:4M@2000,stream:4M@1000,cache:4M', 5, {}],
    ] as const) {
      it(`${save}: ${ram} MiB, ${workload}, seed ${seed}`, async () => {
        const r = await cycle(save, ram, workload, seed, { saveOptions });
        expectPass(r);
        expect(r.save.strategy).toBe(save);
        // Writes during the save were caught: a running churn/stream faults.
        if (workload !== 'idle') expect(r.save.stats.faults).toBeGreaterThan(0);
        expect(r.save.atomicCopyPages).toBeLessThan(r.save.pagesSaved);
      });
    }
    it(`${save}: a 4 MiB-page guest (pages split for tracking)`, async () => {
      expectPass(await cycle(save, 32, 'churn:2M@1000', 6, { largePages: true }));
    });
  }
});

describe('wp-full', () => {
  it('takes what to copy atomically from the fault bitmap: never-protected pages plus the dirty ones of the image, each once', () => {
    const pageSet = new PageSetBits({ bitmap: new Uint32Array(4) } as unknown as GuestAllocator, Uint32Array.of(1, 2, 5, 7, 40, 41, 99));
    // 3 and 64 are dirty but not in the image (freed, or never saveable); 5 is in both lists.
    const toCopy = unprotectedAtAtomic(Uint32Array.of(1, 5, 99), Uint32Array.of(3, 5, 7, 41, 64), pageSet);
    expect([...toCopy]).toEqual([1, 5, 7, 41, 99]);
    expect([...unprotectedAtAtomic(new Uint32Array(0), new Uint32Array(0), pageSet)]).toEqual([]);
  });

  it('saves an image larger than half of RAM, which swsusp refuses', async () => {
    const workload = 'stream:18M@50';
    const refused = await hibernate({ ramBytes: 32 * MiB, workload, image: guestImage(), imagePath: tempSwapPath('half') }).catch((e) => e);
    expect(refused).toBeInstanceOf(HibernationRefusedError);
    const r = await cycle('wp-full', 32, workload, 7);
    expectPass(r);
    expect(r.save.pagesSaved).toBeGreaterThan(4096);
  });

  it('makes room like every save: on 16 MiB with churn:4M,cache:8M it drops cache pages until the atomic copy fits, and passes', async () => {
    const r = await cycle('wp-full', 16, 'churn:4M,cache:8M', 14);
    expectPass(r);
    expect(r.save.cachePagesDropped).toBeGreaterThan(0);
    expect(r.save.cachePagesDropped).toBeLessThan(2048);
    // The working set became known in the first live write: the save began again after dropping.
    expect(r.save.stats.restarts).toBe(1);
  });

  it('copy frames are reserved before the freeze; when that was short, the rest is taken at the atomic point', async () => {
    // No margin: the harness's own write to the allocator's state page after the count
    // unprotects one page more than was reserved for.
    const short = await cycle('wp-full', 32, 'churn:2M@1000', 12, { saveOptions: { atomicMargin: 0 } });
    expectPass(short);
    expect(short.save.stats.copyFramesAdded).toBeGreaterThan(0);
    const roomy = await cycle('wp-full', 32, 'churn:2M@1000', 12);
    expectPass(roomy);
    expect(roomy.save.stats.copyFramesAdded).toBe(0);
  });

  it('pre-copy rounds re-protect the dirty pages and stop at the threshold', async () => {
    // A slow disk (40 pages per tick) and a slow churn (20 writes per tick) over 256 pages: the
    // first pass takes many ticks and leaves many dirty pages; each round of those is shorter.
    const r = await cycle('wp-full', 32, 'churn:1M@2', 8, { saveOptions: { precopyRounds: 8, stopThreshold: 70, io: 16 } });
    expectPass(r);
    const live = r.save.stats as { rounds: PrecopyRound[]; stopReason: string };
    expect(live.rounds.length).toBeGreaterThanOrEqual(2);
    expect(live.rounds[0]!.pagesWritten).toBe(r.save.pagesSaved);
    for (const round of live.rounds.slice(1)) expect(round.pagesWritten).toBe(live.rounds[round.round - 1]!.dirtyAfter);
    expect(live.stopReason).toBe('threshold');
    expect(live.rounds[0]!.dirtyAfter).toBeGreaterThan(70);
    expect(live.rounds.at(-1)!.dirtyAfter).toBeLessThanOrEqual(70);
  });

  it('with no pre-copy rounds asked, one pass and the reason says so', async () => {
    const r = await cycle('wp-full', 32, 'churn:256K@5', 9);
    expectPass(r);
    expect((r.save.stats.rounds as PrecopyRound[]).length).toBe(1);
    expect(r.save.stats.stopReason).toBe('no pre-copy rounds asked');
  });
});

describe('cow', () => {
  it('with a working set larger than the reserve pool, the writer saves faulting pages first and the image is still exact', async () => {
    const r = await cycle('cow', 32, 'churn:2M@3000', 10, { saveOptions: { pool: 16, io: 64 } });
    expectPass(r);
    expect(r.save.stats.savedEarly).toBeGreaterThan(0);
  });

  it('with a pool large enough, nothing is saved early', async () => {
    const r = await cycle('cow', 32, 'churn:256K@100', 11, { saveOptions: { pool: 512 } });
    expectPass(r);
    expect(r.save.stats.savedEarly).toBe(0);
  });

});

describe('who runs while the image is written (the guest\'s own counters)', () => {
  /** Workload steps of every churn/stream task, read from their headers in `ram` (the guest's, or the oracle's copy). */
  function steps(tasks: readonly TaskInfo[], read32: (address: number) => number): number {
    let n = 0;
    for (const t of tasks) {
      if (t.kind !== 'churn' && t.kind !== 'stream') continue;
      n += read32(t.bufBase + fieldOffset('workload_header', 'steps_lo')) + read32(t.bufBase + fieldOffset('workload_header', 'steps_hi')) * 2 ** 32;
    }
    return n;
  }

  for (const [save, before, after] of [['swsusp', 'stands', 'stands'], ['wp-full', 'runs', 'stands'], ['cow', 'stands', 'runs']] as const) {
    it(`${save}: the guest ${before} before the atomic point and ${after} after it`, async () => {
      const swapPath = tempSwapPath(save);
      const swap = SwapDevice.ensure(swapPath, swapBytesFor(32 * MiB));
      // 200 writes per guest ms: at most 2000 steps between two safe points (one tick's batch).
      const guest = await Guest.boot({ ramBytes: 32 * MiB, workload: 'churn:1M@200', seed: 13, image: guestImage(), swapPath });
      try {
        await guest.runTicks(5);
        const tasks = guest.tasks();
        const stepsAtStart = steps(tasks, (a) => guest.machine.readU32(a));
        // A slow disk (40 pages a tick): writing 2000-odd pages while running takes about 50 ticks.
        const options = save === 'swsusp' ? {} : { io: 16 };
        const { oracle } = await runSave(saveStrategy(save), options, { guest, swap, progress: silentProgress });
        const stepsBefore = steps(tasks, (a) => oracle!.read32(a)) - stepsAtStart;
        const instructionsAfter = guest.machine.instructions - oracle!.instructions;
        if (before === 'runs') expect(stepsBefore).toBeGreaterThan(5 * 2000);
        else expect(stepsBefore).toBeLessThanOrEqual(2000);
        if (after === 'runs') expect(instructionsAfter).toBeGreaterThan(1_000_000);
        else expect(instructionsAfter).toBeLessThan(200_000);
      } finally {
        swap.close();
        await guest.machine.powerOff();
      }
    });
  }
});
