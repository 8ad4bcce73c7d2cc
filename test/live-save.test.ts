import { describe, expect, it } from 'vitest';
import { hibernate, runCycle, type CycleReport } from '../src/cycle.ts';
import { HibernationRefusedError } from '../src/save/strategy.ts';
import { PageSetBits } from '../src/save/common.ts';
import { unprotectedAtAtomic } from '../src/save/wp-full.ts';
import type { GuestAllocator } from '../src/machine/allocator.ts';
import { guestImage, MiB, tempSwapPath } from './helpers.ts';

function expectPass(r: CycleReport): void {
  expect(r.failures).toEqual([]);
  expect(r.verdict).toBe('pass');
  expect(r.oracle.against).toBe('oracle');
  expect(r.oracle.differingPages).toEqual([]);
  expect(r.oracle.pagesCompared).toBe(r.save.pagesSaved);
}

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
      [32, 'stream:2M@500', 3, { bytesPerMs: 32 * 1024 }],
      [32, 'idle', 4, {}],
      [64, 'churn:4M@2000,stream:4M@1000,cache:4M', 5, {}],
    ] as const) {
      it(`${save}: ${ram} MiB, ${workload}, seed ${seed}`, async () => {
        const r = await cycle(save, ram, workload, seed, { saveOptions });
        expectPass(r);
        expect(r.save.strategy).toBe(save);
        const live = r.save.live!;
        // Writes during the save were caught: a running churn/stream faults, and every faulted page was copied atomically.
        if (workload !== 'idle') expect(live.faults).toBeGreaterThan(0);
        // wp-full copies what faulted plus what can never be protected; cow only the latter.
        expect(r.save.atomicCopyPages).toBe(save === 'wp-full' ? live.flaggedPages + live.unprotectablePages : live.unprotectablePages);
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
    expect(r.save.largestImageFraction).toBeGreaterThan(0.9);
  });

  it('copy frames are reserved before the freeze; when that was short, the rest is taken at the atomic point', async () => {
    // No margin: the harness's own write to the allocator's state page after the count
    // unprotects one page more than was reserved for.
    const short = await cycle('wp-full', 32, 'churn:2M@1000', 12, { saveOptions: { atomicMargin: 0 } });
    expectPass(short);
    expect(short.save.live!.copyFramesAdded).toBeGreaterThan(0);
    const roomy = await cycle('wp-full', 32, 'churn:2M@1000', 12);
    expectPass(roomy);
    expect(roomy.save.live!.copyFramesAdded).toBe(0);
  });

  it('pre-copy rounds re-protect the dirty pages and stop at the threshold', async () => {
    // A slow disk (40 pages per tick) and a slow churn (20 writes per tick) over 256 pages: the
    // first pass takes many ticks and leaves many dirty pages; each round of those is shorter.
    const r = await cycle('wp-full', 32, 'churn:1M@2', 8, { saveOptions: { precopyRounds: 8, stopThreshold: 70, bytesPerMs: 16 * 1024 } });
    expectPass(r);
    const live = r.save.live!;
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
    expect(r.save.live!.rounds.length).toBe(1);
    expect(r.save.live!.stopReason).toBe('no pre-copy rounds asked');
  });
});

describe('cow', () => {
  it('with a working set larger than the reserve pool, the writer saves faulting pages first and the image is still exact', async () => {
    const r = await cycle('cow', 32, 'churn:2M@3000', 10, { saveOptions: { poolPages: 16, bytesPerMs: 64 * 1024 } });
    expectPass(r);
    expect(r.save.live!.savedEarly).toBeGreaterThan(0);
  });

  it('with a pool large enough, nothing is saved early', async () => {
    const r = await cycle('cow', 32, 'churn:256K@100', 11, { saveOptions: { poolPages: 512 } });
    expectPass(r);
    expect(r.save.live!.savedEarly).toBe(0);
  });

  it('the guest runs on while the image is written: one timer tick per tick\'s worth of pages', async () => {
    const r = await cycle('cow', 32, 'churn:2M@1000', 12, { saveOptions: { bytesPerMs: 64 * 1024 } });
    expectPass(r);
    // 64 KiB per guest ms = 160 pages per 10 ms tick.
    expect(r.save.live!.liveTicks).toBe(Math.ceil(r.save.pagesSaved / 160));
  });
});
