/**
 * two-pageset: TuxOnIce's save (Nigel Cunningham's Suspend2/TuxOnIce; described with
 * Kyle Moffett's freezer in "Remove process freezer from suspend to RAM pathway", LKML,
 * July 2007).
 *
 * Pageset 2 is the memory that stays untouched while the image is written: the buffers
 * of the tasks that stay frozen, and the cache. Pageset 1 is everything else (the
 * kernel, its tables and stacks, the tasks a save thaws).
 *
 *   freeze every task
 *   → pageset 2 written first, straight from its frames, with no copy; meanwhile only
 *     the helper tasks (kwriter, the `helper` workload) are thawed and run (Moffett's
 *     selective thaw: "the processes needed for sync"); a CRC32 of each page written is
 *     kept in guest frames (TuxOnIce's checksum option)
 *   → the helpers frozen again; atomic section: every pageset-2 page whose checksum no
 *     longer matches is written again, from its frame, now (never silently wrong)
 *   → the atomic copy of pageset 1 into pageset 2's frames, whose contents are on disk;
 *     if pageset 1 is larger, the rest of its copies go into free frames
 *   → pageset 1 written from its copies, signature last, power off.
 *
 *   frames:  [pageset 1: kernel, tables, stacks, helpers][pageset 2: frozen buffers, cache][free]
 *   after the atomic copy: pageset 2's frames hold pageset 1's copies (+ free frames for the rest)
 *
 * There is no half-of-RAM limit: the copy borrows pageset 2's frames, so only pageset 1
 * beyond pageset 2, and the checksums, need free memory.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { crc32 } from '../image/crc.ts';
import { ProtocolError } from '../machine/errors.ts';
import { countBits, framesOfWords } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { assertPageSetUnchanged, PageSetBits } from './common.ts';
import { IO_OPTION, writeWhileRunning } from './live-io.ts';
import { defineSaveStrategy } from './strategy.ts';

export const twoPageset = defineSaveStrategy({
  name: 'two-pageset',
  description: "pageset 2 (frozen tasks' buffers, cache) written first straight from its frames while only the helpers run; then the atomic copy of pageset 1 into pageset 2's frames; checksums catch a pageset-2 page changed since it was written",
  origin: 'Nigel Cunningham, TuxOnIce; with Kyle Moffett\'s freezer, "Remove process freezer from suspend to RAM pathway", LKML July 2007',
  options: declareOptions({
    io: IO_OPTION,
    thawTask: {
      kind: 'integer', default: 0, min: 0, max: 31,
      help: 'an experiment: also thaw this workload task (id) while pageset 2 is written, its buffer left in pageset 2; the checksums at the atomic point catch what it wrote, which is written again (0: none)',
    },
  }),
  stats: declareStats({
    pageset1Pages: { kind: 'pages', help: 'pages of pageset 1 (everything but pageset 2): atomically copied' },
    pageset2Pages: { kind: 'pages', help: "pages of pageset 2 (the buffers of tasks that stay frozen, the cache): written first, straight from their frames" },
    pagesWrittenAgain: { kind: 'pages', help: 'pageset-2 pages whose checksum changed between their write and the atomic point: written again there' },
    framesFromPageset2: { kind: 'pages', help: "pageset 1's copies put into pageset 2's frames" },
    framesFromFree: { kind: 'pages', help: "pageset 1's copies put into free frames (pageset 1 larger than pageset 2)" },
    checksumPages: { kind: 'pages', help: "guest frames holding pageset 2's checksums (a CRC32 per page)" },
    tasksThawed: { kind: 'count', help: 'tasks thawed while pageset 2 was written (the helpers, and thawTask)' },
    liveTicks: { kind: 'ticks', help: 'guest timer ticks that ran while pageset 2 was written' },
  }),

  async save(session, o) {
    const { guest, progress } = session;
    const m = session.machine;
    const alloc = session.allocator;
    const frames = alloc.frameCount;

    await session.freeze();
    const tasks = guest.tasks();
    let thawMask = 0;
    for (const t of tasks) if (t.kind === 'helper') thawMask |= 1 << t.id;
    if (o.thawTask) {
      const t = tasks.find((x) => x.id === o.thawTask);
      if (!t || (t.kind !== 'churn' && t.kind !== 'stream')) await session.refuse(`two-pageset: thawTask ${o.thawTask} is not a workload task (churn or stream)`, { thawTask: o.thawTask });
      thawMask |= 1 << o.thawTask;
    }
    // Pageset 2: the cache, and the buffers of the tasks that stay frozen (thawTask's is
    // left in it on purpose).
    const ps2Owners = new Uint8Array(256);
    ps2Owners[OWNERS.CACHE.value] = 1;
    for (const t of tasks) if (t.freezable && t.kind !== 'helper') ps2Owners[OWNERS.TASK_BASE.value + t.id] = 1;

    let saveable: Uint32Array = new Uint32Array(0);
    let ps2Words: Uint32Array = new Uint32Array(0);
    let ps1Count = 0;
    let ps2Count = 0;
    const need = () => Math.max(0, ps1Count - ps2Count) + Math.ceil((ps2Count * 4) / PAGE_SIZE);
    await session.time('prepare', () =>
      session.makeRoom(
        () => {
          saveable = session.saveableWords();
          ps2Words = pageset2Words(saveable, alloc.owners, ps2Owners);
          ps2Count = countBits(ps2Words);
          ps1Count = countBits(saveable) - ps2Count;
          return need();
        },
        (needed, free) =>
          `cannot hibernate: pageset 1 (${ps1Count} pages) is larger than pageset 2 (${ps2Count}) by more than the free frames, with the checksum pages ` +
          `(${needed} needed, ${free} of ${frames} free)`,
      ),
    );
    const checksumPages = Math.ceil((ps2Count * 4) / PAGE_SIZE);
    const extraCount = Math.max(0, ps1Count - ps2Count);
    const taken = checksumPages + extraCount ? alloc.allocFrames(checksumPages + extraCount, OWNERS.SNAPSHOT.value) : new Uint32Array(0);
    if (!taken) throw new ProtocolError('allocator ran short after the free count said it would not');
    const checksums = taken.subarray(0, checksumPages);
    const extra = taken.subarray(checksumPages);
    const image = await session.openImage(framesOfWords(saveable, frames));
    const pageSet = new PageSetBits(alloc, saveable, 'words');
    const ps2 = framesOfWords(ps2Words, frames);
    const ps1Words = new Uint32Array(saveable.length);
    for (let w = 0; w < saveable.length; w++) ps1Words[w] = (saveable[w]! & ~ps2Words[w]!) >>> 0;
    const ps1 = framesOfWords(ps1Words, frames);
    // Guest RAM is looked up at each use: the guest runs, and the event loop turns, between
    // them, and either can replace the wasm memory behind it (docs/V86.md).
    const frame = (pfn: number) => m.ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    const checksumAt = (k: number) => (checksums[k >>> 10]! * PAGE_SIZE + (k & 1023) * 4) >>> 2;

    // Pageset 2 first, straight from its frames, while only the thawed tasks run.
    const tasksThawed = thawMask ? await guest.pm('THAW', thawMask) : 0;
    await guest.pm('DONE');
    const { ticks: liveTicks } = await session.time('write pageset 2', () =>
      writeWhileRunning(guest, ps2.length, o.io, progress, 'write pageset 2', (first, count) => {
        const ram32 = m.ram32;
        for (let k = first; k < first + count; k++) {
          const pfn = ps2[k]!;
          const data = frame(pfn);
          ram32[checksumAt(k)] = crc32(data);
          image.write(image.indexOf(pfn), data);
        }
      }),
    );
    await guest.enterPm();
    await session.time('refreeze', () => guest.pm('FREEZE'));

    let pagesWrittenAgain = 0;
    const phase = progress.phase('atomic copy of pageset 1', ps1.length);
    await session.atomic(async (atomicPoint) => {
      atomicPoint();
      const ram = m.ram;
      const ram32 = m.ram32;
      assertPageSetUnchanged(alloc, pageSet, "pageset 2's write");
      pagesWrittenAgain = rewriteChanged(image, ps2, frame, (k) => ram32[checksumAt(k)]!);
      // Pageset 1 into pageset 2's frames (on disk, checked), then into the free ones.
      for (let k = 0; k < ps1.length; k++) {
        const to = k < ps2.length ? ps2[k]! : extra[k - ps2.length]!;
        ram.copyWithin(to * PAGE_SIZE, ps1[k]! * PAGE_SIZE, (ps1[k]! + 1) * PAGE_SIZE);
      }
      phase.update(ps1.length);
    });
    const written = await session.time('write', async () => {
      for (let k = 0; k < ps1.length; k++) {
        const to = k < ps2.length ? ps2[k]! : extra[k - ps2.length]!;
        image.write(image.indexOf(ps1[k]!), frame(to), { stable: true });
      }
      phase.end();
      return session.commit(image, { stats: { atomicCopyPages: ps1.length, frozenTasks: session.tasksFrozen } });
    });
    return {
      image: written,
      atomicCopyPages: ps1.length,
      stats: {
        pageset1Pages: ps1.length, pageset2Pages: ps2.length, pagesWrittenAgain,
        framesFromPageset2: Math.min(ps1.length, ps2.length), framesFromFree: extra.length, checksumPages, tasksThawed, liveTicks,
      },
    };
  },
});

/** The saveable frames whose owner is one of pageset 2's. */
function pageset2Words(saveable: Uint32Array, owners: Uint8Array, ps2Owners: Uint8Array): Uint32Array {
  const out = new Uint32Array(saveable.length);
  for (let w = 0; w < saveable.length; w++) {
    for (let x = saveable[w]!; x; x = (x & (x - 1)) >>> 0) {
      const bit = 31 - Math.clz32(x & -x);
      if (ps2Owners[owners[w * 32 + bit]!]) out[w] = (out[w]! | (1 << bit)) >>> 0;
    }
  }
  return out;
}

/** At the atomic point: every pageset-2 page whose CRC changed since its write is written again from its frame; returns how many. */
function rewriteChanged(
  image: { write(index: number, data: Uint8Array): void; indexOf(pfn: number): number },
  ps2: Uint32Array,
  frame: (pfn: number) => Uint8Array,
  written: (k: number) => number,
): number {
  let n = 0;
  for (let k = 0; k < ps2.length; k++) {
    const data = frame(ps2[k]!);
    if (crc32(data) !== written(k)) {
      image.write(image.indexOf(ps2[k]!), data);
      n++;
    }
  }
  return n;
}
