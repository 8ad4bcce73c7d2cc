/**
 * swsusp: the baseline save of Linux's kernel/power/snapshot.c (seed 000).
 *
 *   freeze tasks
 *   → count saveable pages (every frame in use that is not the hibernation's own)
 *   → preallocate one free frame per saveable page for its atomic copy, plus the two
 *     memory bitmaps (orig_bm: which frames are saved, copy_bm: where their copies
 *     are) and a buffer page, all from the guest's allocator
 *   → if that does not fit, drop reclaimable cache pages and count again; if it still
 *     does not fit, refuse with the numbers (and thaw: nothing was lost)
 *   → atomic section (the guest saved its context, interrupts off): copy every
 *     saveable page into its copy
 *   → write the image from the copies (PFNs from orig_bm, data from copy_bm's frames)
 *   → signature last, power off.
 *
 * The half-of-RAM limit is nowhere in this file: the copies are real frames, so a
 * guest using more than about half of its RAM has no room for them, and the refusal
 * follows from the allocator running short.
 */
import { OWNERS } from '../abi.ts';
import { ImageWriter, type SavedContext } from '../image/index.ts';
import { ProtocolError } from '../machine/errors.ts';
import { bitmapPages, countBits, forEachRunPair, framesOfWords, GuestBitmap, runsOfWords } from '../metrics/bitmap.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { HibernationRefusedError, type SaveContext, type SaveReport, type SaveStrategy } from './strategy.ts';
import { commitImage } from './write-image.ts';
import { assertPageSetUnchanged, DowntimeClock, freezeTasks, moveOracleTime, recordAtomicPoint, captureSavedContext, saveableWords, memoryAtAtomic, countNosave, PageSetBits } from './common.ts';

export { forEachRun, saveablePfns } from './common.ts';

export const swsusp: SaveStrategy = {
  name: 'swsusp',
  description: 'freeze, shrink until the copy fits, atomic copy of all saveable pages into free frames, write',
  async save(ctx: SaveContext): Promise<SaveReport> {
    const { guest, swap, progress } = ctx;
    const m = guest.machine;
    const alloc = guest.allocator;
    const frames = alloc.frameCount;
    const timer = new PhaseTimer();
    let tasksFrozen = 0;
    let cachePagesDropped = 0;

    const nosave = countNosave(alloc); // set at boot; counted before the downtime
    const clock = new DowntimeClock(guest);
    tasksFrozen = await freezeTasks(guest, timer, clock);

    // Preallocation (hibernate_preallocate_memory): copies + orig_bm + copy_bm + one buffer page.
    // The page sets are allocator-bitmap words and runs of frames, not lists of frames:
    // each save runs once per process, cold, and a loop over every page costs ~100 ns a
    // page there (metrics/bitmap.ts).
    const metaPages = 2 * bitmapPages(frames) + 1;
    let saveable: Uint32Array = new Uint32Array(0);
    let saveableCount = 0;
    let copies: Uint32Array | undefined;
    let meta: Uint32Array | undefined;
    await timer.time('prepare', async () => {
      for (;;) {
        saveable = saveableWords(alloc);
        saveableCount = countBits(saveable);
        const need = saveableCount + metaPages;
        const free = alloc.freeCount;
        if (saveableCount > swap.maxPages()) {
          await thawAndRefuse(guest, `the image would hold ${saveableCount} pages but the swap device ${swap.path} holds at most ${swap.maxPages()}`, {
            saveable: saveableCount, swapPages: swap.maxPages(),
          });
        }
        if (need <= free) break;
        const cache = guest.cachePages;
        // Every dropped cache page is one page less to save and one frame more to copy into.
        const want = Math.min(cache, Math.ceil((need - free) / 2));
        const dropped = want > 0 ? await guest.pm('DROP_CACHE', want) : 0;
        cachePagesDropped += dropped;
        if (dropped === 0) {
          await thawAndRefuse(
            guest,
            `cannot hibernate: ${saveableCount} saveable pages need as many free frames for their atomic copies plus ${metaPages} for the memory bitmaps ` +
              `(${need} in all), but only ${free} of ${frames} frames are free` +
              (cachePagesDropped ? ` after dropping ${cachePagesDropped} cache pages` : '') +
              `; swsusp can save at most about half of RAM (${(frames * 4) / 1024} MiB here)`,
            { saveable: saveableCount, needed: need, free, frames, cachePagesDropped },
          );
        }
      }
      copies = alloc.allocMasks(saveableCount, OWNERS.SNAPSHOT.value);
      meta = alloc.allocFrames(metaPages, OWNERS.SNAPSHOT.value);
      if (!copies || !meta) throw new ProtocolError('allocator ran short after the free count said it would not');
    });

    const bmPages = bitmapPages(frames);
    const origBm = new GuestBitmap(m, meta!.subarray(0, bmPages), frames);
    const copyBm = new GuestBitmap(m, meta!.subarray(bmPages, 2 * bmPages), frames);
    const pageSet = new PageSetBits(alloc, saveable, 'words');
    let savedContext: SavedContext | undefined;
    let memory: SaveReport['memory'] | undefined;

    let oracleMs = 0;
    await timer.time('atomic', () =>
      guest.atomic(() => {
        oracleMs = recordAtomicPoint(ctx, clock);
        assertPageSetUnchanged(alloc, pageSet, 'the preallocation');
        memory = memoryAtAtomic(alloc, nosave);
        savedContext = captureSavedContext(guest);
        origBm.clear();
        origBm.setWords(saveable);
        copyBm.clear();
        copyBm.setWords(copies!);
        const ram = m.ram;
        const phase = progress.phase('atomic copy', saveableCount);
        let done = 0;
        forEachRunPair(runsOfWords(saveable, frames), runsOfWords(copies!, frames), (_i, src, dst, n) => {
          ram.copyWithin(dst * 4096, src * 4096, (src + n) * 4096);
          done += n;
          phase.update(done);
        });
        phase.end();
      }),
    );

    // Writing happens outside the atomic section, from the copies, as swsusp_write does:
    // the PFNs from orig_bm, the data from copy_bm's frames, both read back from guest RAM.
    const written = await timer.time('write', () => {
      const pfns = framesOfWords(origBm.toWords(), frames);
      const copyWords = copyBm.toWords();
      const copyCount = countBits(copyWords);
      if (pfns.length !== copyCount) throw new ProtocolError(`orig_bm has ${pfns.length} pages but copy_bm ${copyCount}`);
      const writer = new ImageWriter(swap, {
        pfns,
        buildId: m.options.image.buildId,
        ramBytes: m.ramBytes,
        frameCount: frames,
        strategy: 'swsusp',
        context: savedContext!,
        stats: { atomicCopyPages: pfns.length, frozenTasks: tasksFrozen },
      });
      const parts: Uint8Array[] = [];
      const copyRuns = runsOfWords(copyWords, frames);
      for (let r = 0; r < copyRuns.length; r += 2) parts.push(m.view(copyRuns[r]! * 4096, copyRuns[r + 1]! * 4096));
      return commitImage(writer, parts, progress);
    });

    const downtime = clock.finish();
    await timer.time('power-off', () => guest.powerOff());
    moveOracleTime(timer, oracleMs);

    return {
      strategy: 'swsusp',
      pagesSaved: written.pageCount,
      imageBytes: written.imageBytes,
      atomicCopyPages: saveableCount,
      snapshotFrames: saveableCount + meta!.length,
      cachePagesDropped,
      tasksFrozen,
      memory: memory!,
      phasesMs: timer.phases,
      downtime,
      // Every saved page needs a free frame for its copy: at most half of what the bitmaps leave.
      largestImageFraction: Math.floor((frames - metaPages) / 2) / frames,
    };
  },
};

async function thawAndRefuse(guest: SaveContext['guest'], message: string, facts: Record<string, number>): Promise<never> {
  await guest.pm('THAW', 0xffffffff);
  await guest.pm('DONE');
  throw new HibernationRefusedError(message, facts);
}
