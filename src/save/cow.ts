/**
 * cow: a copy-on-write snapshot (Kyle Moffett's freezer/COW design, LKML 2007; the
 * linux-pm 2010 thread).
 *
 *   make room for the reserve pool and the never-protectable pages
 *   → freeze → atomic section, only for what must be atomic: the atomic point (the
 *   snapshot), a copy of the pages that can never be write-protected (page tables,
 *   stacks, descriptor tables) and write protection of every other saveable page
 *   (copy-before-write) → thaw: the guest runs on while the image is written, at the
 *   I/O model's speed
 *   → a page the guest writes is first copied to a frame of the reserve pool; the
 *     writer takes the copy if there is one, else the (still protected, so unchanged)
 *     page itself, and then drops the page's protection: it is saved.
 *
 * The image is the state at the snapshot. When the reserve pool runs out, the faulting
 * write waits while the harness writes that page to the image first ("the writer saves
 * the faulting page first"), then the page is unprotected and the write goes on: the
 * guest is stalled for one page write, never given a wrong image.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats, type OptionValues } from '../declarations.ts';
import { ProtocolError } from '../machine/errors.ts';
import { FaultHandler } from '../mmu/faults.ts';
import { CopyBeforeWritePolicy } from '../mmu/policies/index.ts';
import { WriteProtector } from '../mmu/protect.ts';
import { forEachRun, wordsOfFrames } from '../pages/page-set.ts';
import { hex, PAGE_SIZE } from '../units.ts';
import { assertNoPagesAdded, fixPageSet, PageSetBits, saveablePfns } from './common.ts';
import { IO_OPTION, writeWhileRunning } from './live-io.ts';
import type { SaveSession } from './session.ts';
import { defineSaveStrategy, type ImageStream } from './strategy.ts';

const options = declareOptions({
  io: IO_OPTION,
  pool: { kind: 'integer', min: 1, unit: 'pages', defaultText: '5 % of RAM, at least 64', help: 'frames in the copy-before-write reserve pool' },
});

const stats = declareStats({
  faults: { kind: 'count', help: 'write faults taken while the image was written' },
  pagesFaulted: { kind: 'pages', help: 'distinct pages that faulted (copied before their first write, or saved early)' },
  unprotectablePages: { kind: 'pages', help: 'pages copied atomically because they can never be protected (page tables, stacks, descriptor tables)' },
  savedEarly: { kind: 'pages', help: 'pages the writer saved first because the reserve pool was exhausted when they faulted' },
  poolPages: { kind: 'pages', help: 'frames in the reserve pool' },
  liveTicks: { kind: 'ticks', help: 'guest timer ticks the guest ran while the image was written' },
});

export const cow = defineSaveStrategy({
  name: 'cow',
  description: 'atomic only for page tables and stacks; copy-before-write snapshot; write the image while the guest runs',
  origin: 'Kyle Moffett, "Remove process freezer from suspend to RAM pathway", LKML 2007; linux-pm 2010',
  options,
  stats,
  save: saveCow,
});

/** Frames taken beside the never-protectable pages' copies (slack for what the freeze allocates). */
const ATOMIC_SLACK = 64;

async function saveCow(session: SaveSession, o: OptionValues<typeof options>) {
  const { guest, progress } = session;
  const m = session.machine;
  const alloc = session.allocator;
  const frames = alloc.frameCount;
  const poolPages = o.pool ?? Math.max(64, Math.floor(frames * 0.05));
  const protector = new WriteProtector(guest);
  const poolTablePages = Math.ceil((poolPages * 4) / PAGE_SIZE);
  await session.time('prepare', () =>
    session.makeRoom(
      () => {
        const forbidden = protector.forbidden();
        let never = 0;
        for (const pfn of saveablePfns(alloc)) if (forbidden.has(pfn)) never++;
        return poolPages + poolTablePages + never + ATOMIC_SLACK;
      },
      (needed, free) => `cannot hibernate with cow: the reserve pool (${poolPages} frames) and the atomic copy need ${needed} free frames, only ${free} of ${frames} are free`,
    ),
  );

  let image: ImageStream | undefined;
  /** Frames already written to the image (1), so the live pass skips them. */
  const saved = new Uint8Array(frames);
  let savedEarly = 0;
  // Pool exhausted: save the faulting page (unchanged since the snapshot: it is protected) first.
  const policy = new CopyBeforeWritePolicy(guest, protector, {
    poolPages,
    onPoolExhausted: (fault) => {
      const index = image ? image.indexOf(fault.pfn) : -1;
      if (index < 0) return { stop: new ProtocolError(`copy-before-write pool exhausted on PFN ${hex(fault.pfn)}, which is not in the image`) };
      image!.write(index, m.view(fault.pfn * PAGE_SIZE, PAGE_SIZE));
      saved[fault.pfn] = 1;
      savedEarly++;
      protector.unprotect([fault.pfn]);
      return 'retry';
    },
  });
  const handler = new FaultHandler(guest, protector, policy).install();
  let committed = false;
  try {
    // Everything that does not need the guest stopped is prepared before the freeze: the
    // page set (the guest does not allocate while its workloads run; the atomic section
    // checks that nothing was added), what must be copied atomically and the frames for
    // it, what to protect.
    const pfns = fixPageSet(guest, protector);
    const pageSet = new PageSetBits(alloc, pfns);
    const forbidden = protector.forbidden();
    const mustCopy = pfns.filter((p) => forbidden.has(p));
    const protectable = pfns.filter((p) => !forbidden.has(p));
    image = await session.openImage(pfns);
    const atomicCopies = alloc.allocFrames(mustCopy.length + ATOMIC_SLACK, OWNERS.SNAPSHOT.value);
    if (!atomicCopies) {
      await session.refuse(`cannot hibernate with cow: the atomic copy needs ${mustCopy.length + ATOMIC_SLACK} free frames, only ${alloc.freeCount} are free`, { needed: mustCopy.length + ATOMIC_SLACK, free: alloc.freeCount, frames });
    }

    await session.freeze();
    await session.atomic((atomicPoint) => {
      atomicPoint();
      assertNoPagesAdded(alloc, pageSet, 'the freeze');
      forEachRun(mustCopy, atomicCopies!, (_i, src, dst, n) => m.ram.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + n) * PAGE_SIZE));
      protector.protect(protectable, 'cow');
    });
    await session.thaw();

    // The atomic part first, then everything else while the guest runs.
    const copyIndex = new Map<number, number>();
    mustCopy.forEach((p, i) => copyIndex.set(p, atomicCopies![i]!));
    let liveTicks = 0;
    await session.time('live', async () => {
      const { ticks } = await writeWhileRunning(guest, pfns.length, o.io, progress, 'write (live, cow)', (first, n) => {
        for (let i = first; i < first + n; i++) {
          const pfn = pfns[i]!;
          if (saved[pfn]) continue;
          const atomic = copyIndex.get(pfn);
          const copy = atomic ?? policy.copyOf(pfn);
          image!.write(i, m.view((copy ?? pfn) * PAGE_SIZE, PAGE_SIZE));
          if (copy !== undefined && atomic === undefined) policy.release(pfn);
          if (protector.isProtected(pfn)) protector.unprotect([pfn]);
          saved[pfn] = 1;
        }
      });
      liveTicks = ticks;
    });
    const written = await session.time('commit', () =>
      session.commit(image!, { stats: { atomicCopyPages: mustCopy.length, liveWrittenPages: pfns.length, wpFaults: handler.stats.faults, frozenTasks: session.tasksFrozen } }),
    );
    committed = true;
    // The handler stays until the guest is off: pages are still protected while it shuts down.
    session.afterPowerOff(() => handler.uninstall());
    return {
      image: written,
      atomicCopyPages: mustCopy.length,
      faulted: wordsOfFrames([...handler.stats.perPage.keys()], frames),
      stats: { faults: handler.stats.faults, pagesFaulted: handler.stats.perPage.size, unprotectablePages: mustCopy.length, savedEarly, poolPages, liveTicks },
    };
  } finally {
    if (!committed && m.alive && handler.isInstalled) {
      protector.unprotectAll();
      handler.uninstall();
      policy.dispose();
    }
  }
}
