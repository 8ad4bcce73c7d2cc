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
 *   → write the image from the copies (PFNs from orig_bm, data from copy_bm's frames);
 *     the writes of the first copies start while the rest are still being copied
 *   → signature last, power off.
 *
 * The half-of-RAM limit is nowhere in this file: the copies are real frames, so a
 * guest using more than about half of its RAM has no room for them, and the refusal
 * follows from the allocator running short.
 */
import { OWNERS } from '../abi.ts';
import { ImageWriter, type SavedContext } from '../image/index.ts';
import { ProtocolError } from '../machine/errors.ts';
import { countBits, forEachRunPair, framesOfWords, runsOfWords } from '../pages/page-set.ts';
import { bitmapPages, MemoryBitmap } from '../pages/memory-bitmap.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { HibernationRefusedError, type SaveContext, type SaveReport, type SaveStrategy } from './strategy.ts';
import { assertPageSetUnchanged, DowntimeClock, freezeTasks, moveOracleTime, recordAtomicPoint, captureSavedContext, saveableWords, memoryAtAtomic, countNosave, PageSetBits } from './common.ts';
import { PAGE_SIZE } from '../units.ts';

export { saveablePfns } from './common.ts';

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
    // page there (pages/page-set.ts).
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
    const origBm = new MemoryBitmap(m, meta!.subarray(0, bmPages), frames);
    const copyBm = new MemoryBitmap(m, meta!.subarray(bmPages, 2 * bmPages), frames);
    const pageSet = new PageSetBits(alloc, saveable, 'words');
    let savedContext: SavedContext | undefined;
    let memory: SaveReport['memory'] | undefined;

    let oracleMs = 0;
    let writer: ImageWriter | undefined;
    let writing: Promise<void> | undefined;
    const phase = progress.phase('atomic copy and write', saveableCount);
    await timer.time('atomic', () =>
      guest.atomic(async () => {
        oracleMs = recordAtomicPoint(ctx, clock);
        assertPageSetUnchanged(alloc, pageSet, 'the preallocation');
        memory = memoryAtAtomic(alloc, nosave);
        savedContext = captureSavedContext(guest);
        origBm.clear();
        origBm.setWords(saveable);
        copyBm.clear();
        copyBm.setWords(copies!);
        // As copy_data_pages and swsusp_write do, both the copy and the image follow the
        // two bitmaps read back from guest RAM: the PFNs from orig_bm, the copies at
        // copy_bm's frames, the n-th set bit of one paired with the n-th of the other.
        const origWords = origBm.toWords();
        const copyWords = copyBm.toWords();
        const pfns = framesOfWords(origWords, frames);
        if (pfns.length !== saveableCount || countBits(copyWords) !== saveableCount) {
          throw new ProtocolError(`orig_bm has ${pfns.length} pages and copy_bm ${countBits(copyWords)}, but ${saveableCount} were counted`);
        }
        writer = new ImageWriter(swap, {
          pfns,
          buildId: m.options.image.buildId,
          ramBytes: m.ramBytes,
          frameCount: frames,
          strategy: 'swsusp',
          context: savedContext,
          stats: { atomicCopyPages: pfns.length, frozenTasks: tasksFrozen },
        });
        const src: number[] = [];
        const dst: number[] = [];
        const parts: Uint8Array[] = [];
        forEachRunPair(runsOfWords(origWords, frames), runsOfWords(copyWords, frames), (_i, from, to, n) => {
          src.push(from * PAGE_SIZE);
          dst.push(to * PAGE_SIZE);
          parts.push(m.view(to * PAGE_SIZE, n * PAGE_SIZE));
        });
        // The copy is made piece by piece (2 MiB) just before the image writer takes the
        // piece, so the writes of the first copies run on libuv's pool while the rest are
        // copied. The writer is the host's, not a guest device that the atomic section
        // would have suspended; the image still holds only the copies. The atomic section
        // ends when the last page is copied; the last writes finish after it.
        const ram = m.ram;
        let copied = 0;
        let copiedAll!: () => void;
        const allCopied = new Promise<void>((resolve) => (copiedAll = resolve));
        writing = writer.writeRunsAsync(0, parts, {
          fill: (piece, part, offset) => {
            const from = src[part]! + offset;
            ram.copyWithin(dst[part]! + offset, from, from + piece.length);
            copied += piece.length / PAGE_SIZE;
            phase.update(copied);
            if (copied === saveableCount) copiedAll();
          },
        });
        await Promise.race([allCopied, writing]);
      }),
    );

    const written = await timer.time('write', async () => {
      await writing;
      const result = await writer!.commitAsync();
      phase.end();
      return result;
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
