/**
 * swsusp: the baseline save of Linux's kernel/power/snapshot.c (Pavel Machek, Rafael
 * Wysocki; as seed 000 describes it).
 *
 *   freeze tasks
 *   → make room: one free frame per saveable page for its atomic copy, plus the two
 *     memory bitmaps (orig_bm: which frames are saved, copy_bm: where their copies are)
 *     and a buffer page; the session drops reclaimable cache until that fits, or refuses
 *   → preallocate those frames from the guest's allocator
 *   → atomic section (the guest saved its context, interrupts off): copy every saveable
 *     page into its copy
 *   → write the image from the copies (PFNs from orig_bm, data from copy_bm's frames);
 *     the writes of the first copies start while the rest are still being copied
 *   → signature last, power off.
 *
 * The half-of-RAM limit is nowhere in this file: the copies are real frames, so a guest
 * using more than about half of its RAM has no room for them, and the refusal follows
 * from the allocator running short.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { ProtocolError } from '../machine/errors.ts';
import { bitmapPages, MemoryBitmap } from '../pages/memory-bitmap.ts';
import { countBits, forEachRunPair, framesOfWords, runsOfWords } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { assertPageSetUnchanged, PageSetBits } from './common.ts';
import { defineSaveStrategy } from './strategy.ts';

export const swsusp = defineSaveStrategy({
  name: 'swsusp',
  description: 'freeze, shrink until the copy fits, atomic copy of all saveable pages into free frames, write',
  origin: 'Linux swsusp (Pavel Machek, Rafael J. Wysocki), kernel/power/snapshot.c',
  options: declareOptions({}),
  stats: declareStats({
    bitmapPages: { kind: 'pages', help: 'pages of the two memory bitmaps (orig_bm, copy_bm) and the buffer page' },
  }),
  async save(session) {
    const { progress } = session;
    const m = session.machine;
    const alloc = session.allocator;
    const frames = alloc.frameCount;

    await session.freeze();

    // Preallocation (hibernate_preallocate_memory): copies + orig_bm + copy_bm + one
    // buffer page. The page sets are allocator-bitmap words and runs of frames, not lists
    // of frames: each save runs once per process, cold, and a loop over every page runs
    // in V8's interpreter there.
    const metaPages = 2 * bitmapPages(frames) + 1;
    let saveable: Uint32Array = new Uint32Array(0);
    let saveableCount = 0;
    let copies: Uint32Array | undefined;
    let meta: Uint32Array | undefined;
    await session.time('prepare', async () => {
      await session.makeRoom(
        () => {
          saveable = session.saveableWords();
          saveableCount = countBits(saveable);
          return saveableCount + metaPages;
        },
        (needed, free) =>
          `cannot hibernate: ${saveableCount} saveable pages need as many free frames for their atomic copies plus ${metaPages} for the memory bitmaps ` +
          `(${needed} in all), but only ${free} of ${frames} frames are free`,
      );
    });
    const image = await session.openImage(framesOfWords(saveable, frames));
    await session.time('prepare', () => {
      copies = alloc.allocMasks(saveableCount, OWNERS.SNAPSHOT.value);
      meta = alloc.allocFrames(metaPages, OWNERS.SNAPSHOT.value);
      if (!copies || !meta) throw new ProtocolError('allocator ran short after the free count said it would not');
    });

    const bmPages = bitmapPages(frames);
    const origBm = new MemoryBitmap(m, meta!.subarray(0, bmPages), frames);
    const copyBm = new MemoryBitmap(m, meta!.subarray(bmPages, 2 * bmPages), frames);
    const pageSet = new PageSetBits(alloc, saveable, 'words');

    let writing: Promise<void> | undefined;
    const phase = progress.phase('atomic copy and write', saveableCount);
    await session.atomic(async (atomicPoint) => {
      atomicPoint();
      assertPageSetUnchanged(alloc, pageSet, 'the preallocation');
      origBm.clear();
      origBm.setWords(saveable);
      copyBm.clear();
      copyBm.setWords(copies!);
      // As copy_data_pages and swsusp_write do, both the copy and the image follow the
      // two bitmaps read back from guest RAM: the PFNs from orig_bm, the copies at
      // copy_bm's frames, the n-th set bit of one paired with the n-th of the other.
      const origWords = origBm.toWords();
      const copyWords = copyBm.toWords();
      if (countBits(origWords) !== saveableCount || countBits(copyWords) !== saveableCount) {
        throw new ProtocolError(`orig_bm has ${countBits(origWords)} pages and copy_bm ${countBits(copyWords)}, but ${saveableCount} were counted`);
      }
      const src: number[] = [];
      const dst: number[] = [];
      const parts: Uint8Array[] = [];
      forEachRunPair(runsOfWords(origWords, frames), runsOfWords(copyWords, frames), (_i, from, to, n) => {
        src.push(from * PAGE_SIZE);
        dst.push(to * PAGE_SIZE);
        parts.push(m.view(to * PAGE_SIZE, n * PAGE_SIZE));
      });
      // The copy is made piece by piece (2 MiB) just before the image stream takes the
      // piece, so the writes of the first copies run on libuv's pool while the rest are
      // copied. The writer is the host's, not a guest device that the atomic section
      // would have suspended; the image still holds only the copies. The atomic section
      // ends when the last page is copied; the last writes finish after it.
      const ram = m.ram;
      let copied = 0;
      let copiedAll!: () => void;
      const allCopied = new Promise<void>((resolve) => (copiedAll = resolve));
      writing = image.writeRuns(0, parts, {
        fill: (piece, part, offset) => {
          const from = src[part]! + offset;
          ram.copyWithin(dst[part]! + offset, from, from + piece.length);
          copied += piece.length / PAGE_SIZE;
          phase.update(copied);
          if (copied === saveableCount) copiedAll();
        },
      });
      await Promise.race([allCopied, writing]);
    });

    const written = await session.time('write', async () => {
      await writing;
      const result = await session.commit(image, { stats: { atomicCopyPages: saveableCount, frozenTasks: session.tasksFrozen } });
      phase.end();
      return result;
    });
    return { image: written, atomicCopyPages: saveableCount, stats: { bitmapPages: metaPages } };
  },
});
