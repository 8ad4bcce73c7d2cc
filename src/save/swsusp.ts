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
import { bitmapPages, GuestBitmap } from '../metrics/bitmap.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { HibernationRefusedError, type SaveContext, type SaveReport, type SaveStrategy } from './strategy.ts';
import { commitImage } from './write-image.ts';
import { assertPageSetUnchanged, DowntimeClock, forEachRun, freezeTasks, moveOracleTime, recordAtomicPoint, captureSavedContext, saveablePfns, memoryAtAtomic, countNosave } from './common.ts';

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
    const metaPages = 2 * bitmapPages(frames) + 1;
    let saveable: Uint32Array = new Uint32Array(0);
    let copies: Uint32Array | undefined;
    let meta: Uint32Array | undefined;
    await timer.time('prepare', async () => {
      for (;;) {
        saveable = saveablePfns(alloc);
        const need = saveable.length + metaPages;
        const free = alloc.freeCount;
        if (saveable.length > swap.maxPages()) {
          await thawAndRefuse(guest, `the image would hold ${saveable.length} pages but the swap device ${swap.path} holds at most ${swap.maxPages()}`, {
            saveable: saveable.length, swapPages: swap.maxPages(),
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
            `cannot hibernate: ${saveable.length} saveable pages need as many free frames for their atomic copies plus ${metaPages} for the memory bitmaps ` +
              `(${need} in all), but only ${free} of ${frames} frames are free` +
              (cachePagesDropped ? ` after dropping ${cachePagesDropped} cache pages` : '') +
              `; swsusp can save at most about half of RAM (${(frames * 4) / 1024} MiB here)`,
            { saveable: saveable.length, needed: need, free, frames, cachePagesDropped },
          );
        }
      }
      copies = alloc.allocFrames(saveable.length, OWNERS.SNAPSHOT.value);
      meta = alloc.allocFrames(metaPages, OWNERS.SNAPSHOT.value);
      if (!copies || !meta) throw new ProtocolError('allocator ran short after the free count said it would not');
    });

    const bmPages = bitmapPages(frames);
    const origBm = new GuestBitmap(m, meta!.subarray(0, bmPages), frames);
    const copyBm = new GuestBitmap(m, meta!.subarray(bmPages, 2 * bmPages), frames);
    let savedContext: SavedContext | undefined;
    let memory: SaveReport['memory'] | undefined;

    let oracleMs = 0;
    await timer.time('atomic', () =>
      guest.atomic(() => {
        oracleMs = recordAtomicPoint(ctx, clock);
        assertPageSetUnchanged(alloc, saveable, 'the preallocation');
        memory = memoryAtAtomic(alloc, nosave);
        savedContext = captureSavedContext(guest);
        origBm.clear();
        origBm.setAll(saveable);
        copyBm.clear();
        copyBm.setAll(copies!);
        const ram = m.ram;
        const phase = progress.phase('atomic copy', saveable.length);
        let done = 0;
        forEachRun(saveable, copies!, (_i, src, dst, n) => {
          ram.copyWithin(dst * 4096, src * 4096, (src + n) * 4096);
          done += n;
          phase.update(done);
        });
        phase.end();
      }),
    );

    // Writing happens outside the atomic section, from the copies, as swsusp_write does.
    const written = await timer.time('write', () => {
      const pfns = origBm.toArray();
      const copyPfns = copyBm.toArray();
      if (pfns.length !== copyPfns.length) throw new ProtocolError(`orig_bm has ${pfns.length} pages but copy_bm ${copyPfns.length}`);
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
      forEachRun(copyPfns, copyPfns, (_i, copy, _d, n) => parts.push(m.view(copy * 4096, n * 4096)));
      return commitImage(writer, parts, progress);
    });

    const downtime = clock.finish();
    await timer.time('power-off', () => guest.powerOff());
    moveOracleTime(timer, oracleMs);

    return {
      strategy: 'swsusp',
      pagesSaved: written.pageCount,
      imageBytes: written.imageBytes,
      atomicCopyPages: saveable.length,
      snapshotFrames: copies!.length + meta!.length,
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
