/**
 * cow: copy-on-write snapshot (seeds 003, 004; Kyle Moffett's freezer/COW design).
 *
 *   freeze → atomic section, only for what must be atomic: the oracle, a copy of the
 *   pages that can never be write-protected (page tables, stacks, descriptor tables)
 *   and write protection of every other saveable page (copy-before-write) → thaw:
 *   the guest runs on while the image is written, at the I/O model's speed
 *   → a page the guest writes is first copied to a frame of the reserve pool; the
 *     writer takes the copy if there is one, else the (still protected, so unchanged)
 *     page itself, and then drops the page's protection: it is saved.
 *
 * The image is the state at the snapshot start. When the reserve pool runs out, the
 * faulting write waits while the harness writes that page to the image first
 * ("the writer saves the faulting page first"), then the page is unprotected and the
 * write goes on: the guest is stalled for one page write, never given a wrong image.
 */
import { OWNERS } from '../abi.ts';
import { ImageWriter, type SavedContext } from '../image/index.ts';
import { ProtocolError } from '../machine/errors.ts';
import { FaultHandler } from '../mmu/faults.ts';
import { CopyBeforeWritePolicy } from '../mmu/policies/index.ts';
import { WriteProtector } from '../mmu/protect.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { writeWhileRunning, type LiveIoOptions } from './live-io.ts';
import { DowntimeClock, fixPageSet, freezeTasks, moveOracleTime, recordAtomicPoint, captureSavedContext, memoryAtAtomic, countNosave, PageSetBits, assertNoPagesAdded } from './common.ts';
import { forEachRun } from '../pages/page-set.ts';
import type { SaveContext, SaveReport, SaveStrategy } from './strategy.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

export interface CowOptions extends LiveIoOptions {
  /** Frames in the reserve pool for copy-before-write. Default: 5 % of RAM, at least 64. */
  readonly poolPages?: number;
}

export function cow(options: CowOptions = {}): SaveStrategy {
  return {
    name: 'cow',
    description: 'atomic only for page tables and stacks; copy-before-write snapshot; write the image while the guest runs',
    save: (ctx) => saveCow(ctx, options),
  };
}

async function saveCow(ctx: SaveContext, options: CowOptions): Promise<SaveReport> {
  const { guest, swap, progress } = ctx;
  const m = guest.machine;
  const alloc = guest.allocator;
  const frames = alloc.frameCount;
  const timer = new PhaseTimer();
  const protector = new WriteProtector(guest);

  let writer: ImageWriter | undefined;
  /** Image index of each frame (-1: not in the image). */
  const indexOf = new Int32Array(frames).fill(-1);
  /** Frames already written to the image (1), so the live pass skips them. */
  const saved = new Uint8Array(frames);
  let savedEarly = 0;
  // Pool exhausted: save the faulting page (unchanged since the snapshot: it is protected) first.
  const policy = new CopyBeforeWritePolicy(guest, protector, {
    poolPages: options.poolPages ?? Math.max(64, Math.floor(frames * 0.05)),
    onPoolExhausted: (fault) => {
      const index = indexOf[fault.pfn]!;
      if (!writer || index < 0) return { stop: new ProtocolError(`copy-before-write pool exhausted on PFN ${hex(fault.pfn)}, which is not in the image`) };
      writer.writePages(index, m.view(fault.pfn * PAGE_SIZE, PAGE_SIZE));
      saved[fault.pfn] = 1;
      savedEarly++;
      protector.unprotect([fault.pfn]);
      return 'retry';
    },
  });
  const handler = new FaultHandler(guest, protector, policy);
  handler.install();
  try {
    // Everything that does not need the guest stopped is prepared before the freeze: the
    // page set (the guest does not allocate while its workloads run; the atomic section
    // checks that nothing was added), what must be copied atomically and the frames for
    // it, what to protect.
    const nosave = countNosave(alloc);
    const pfns = fixPageSet(guest, protector);
    const pageSet = new PageSetBits(alloc, pfns);
    pfns.forEach((p, i) => { indexOf[p] = i; });
    const forbidden = protector.forbidden();
    const mustCopy = pfns.filter((p) => forbidden.has(p));
    const protectable = pfns.filter((p) => !forbidden.has(p));
    writer = new ImageWriter(swap, { pfns, buildId: m.options.image.buildId, ramBytes: m.ramBytes, frameCount: frames, strategy: 'cow' });

    const atomicCopies = alloc.allocFrames(mustCopy.length + 64, OWNERS.SNAPSHOT.value);
    if (!atomicCopies) throw new ProtocolError(`cow needs ${mustCopy.length + 64} free frames for the atomic part, only ${alloc.freeCount} are free`);

    const clock = new DowntimeClock(guest);
    const tasksFrozen = await freezeTasks(guest, timer, clock);
    let savedContext: SavedContext | undefined;
    let memory: SaveReport['memory'] | undefined;
    let oracleMs = 0;
    await timer.time('atomic', () =>
      guest.atomic(() => {
        oracleMs = recordAtomicPoint(ctx, clock);
        assertNoPagesAdded(alloc, pageSet, 'the freeze');
        forEachRun(mustCopy, atomicCopies, (_i, src, dst, n) => m.ram.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + n) * PAGE_SIZE));
        protector.protect(protectable, 'cow');
        memory = memoryAtAtomic(alloc, nosave);
        savedContext = captureSavedContext(guest);
      }),
    );
    const thawCommand = performance.now();
    await timer.time('thaw', async () => {
      await guest.pm('THAW', 0xffffffff);
      await guest.pm('DONE');
    });
    // The downtime ends when the guest thaws its tasks (its THAWED hypercall), not when
    // the pm task next reports: a timer tick may run the thawed tasks in between.
    const thawed = guest.lastThaw;
    if (!thawed || thawed.ms < thawCommand) throw new ProtocolError('cow: the guest did not report THAWED for the THAW command');
    const downtime = clock.finish(thawed.ms);

    // The atomic part first, then everything else while the guest runs.
    const copyIndex = new Map<number, number>();
    mustCopy.forEach((p, i) => copyIndex.set(p, atomicCopies[i]!));
    let liveTicks = 0;
    await timer.time('live', async () => {
      const { ticks } = await writeWhileRunning(guest, pfns.length, options, progress, 'write (live, cow)', (first, n) => {
        for (let i = first; i < first + n; i++) {
          const pfn = pfns[i]!;
          if (saved[pfn]) continue;
          const atomic = copyIndex.get(pfn);
          const copy = atomic ?? policy.copyOf(pfn);
          writer!.writePages(i, m.view((copy ?? pfn) * PAGE_SIZE, PAGE_SIZE));
          if (copy !== undefined && atomic === undefined) policy.release(pfn);
          if (protector.isProtected(pfn)) protector.unprotect([pfn]);
          saved[pfn] = 1;
        }
      });
      liveTicks = ticks;
    });
    const written = await timer.time('commit', () =>
      writer!.commit({
        context: savedContext!,
        stats: { atomicCopyPages: mustCopy.length, liveWrittenPages: pfns.length, wpFaults: handler.stats.faults, frozenTasks: tasksFrozen },
      }),
    );
    const faults = handler.stats.faults;
    const pagesFaulted = handler.stats.perPage.size;
    // The handler stays until the guest is off: pages are still protected while it shuts down.
    await timer.time('power-off', () => guest.powerOff());
    handler.uninstall();
    moveOracleTime(timer, oracleMs);
    const bookkeeping = policy.frames.length + atomicCopies.length;
    return {
      strategy: 'cow',
      pagesSaved: written.pageCount,
      imageBytes: written.imageBytes,
      atomicCopyPages: mustCopy.length,
      snapshotFrames: bookkeeping,
      cachePagesDropped: 0,
      tasksFrozen,
      memory: memory!,
      phasesMs: timer.phases,
      downtime,
      // Only the unprotectable pages and the pool need frames beside the image.
      largestImageFraction: (frames - bookkeeping) / frames,
      live: {
        faults, pagesFaulted, flaggedPages: pagesFaulted, unprotectablePages: mustCopy.length,
        rounds: [{ round: 0, pagesWritten: pfns.length, dirtyAfter: 0, ticks: liveTicks }],
        stopReason: 'single pass', pageBytesWritten: written.pageBytesWritten, liveTicks, savedEarly,
      },
    };
  } finally {
    handler.uninstall();
  }
}
