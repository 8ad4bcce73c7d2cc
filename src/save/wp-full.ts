/**
 * wp-full: Nigel Cunningham's "write everything while running, copy only what
 * faulted" (seed 002), with optional pre-copy rounds as QEMU and Xen do.
 *
 *   fix the image's page set S (every saveable page now)
 *   → write-protect every page of S that #PF delivery does not need (one TLB flush)
 *   → write all of S to the image while the guest runs, at the I/O model's speed;
 *     a write to a protected page faults: dirty-track marks it in the fault bitmap
 *     (guest frames) and unprotects it
 *   → optional pre-copy rounds: re-protect the dirty pages and write them again,
 *     until few are left, the round limit is hit, or a round makes no progress
 *   → freeze; atomic section: copy every page of S that is not protected now — the
 *     dirty ones and the ones that could never be protected (page tables, stacks,
 *     descriptor tables) — into free guest frames
 *   → write those copies over their earlier versions, in the background (O_DIRECT
 *     where the file system has it); meanwhile lift the tracker's read-only bits in the
 *     copies of the page tables (the image's tables carry none; their runs are written
 *     after that) and checksum the copies; commit the signature, power off.
 *
 * A protected page has not changed since it was written (else it would have
 * faulted), so the image equals memory at the atomic point; the oracle checks it.
 */
import { performance } from 'node:perf_hooks';
import { OWNERS } from '../abi.ts';
import { crc32Pages, ImageWriter, type SavedContext } from '../image/index.ts';
import { ProtocolError } from '../machine/errors.ts';
import { FaultHandler } from '../mmu/faults.ts';
import { DirtyTrackPolicy } from '../mmu/policies/index.ts';
import { WriteProtector } from '../mmu/protect.ts';
import { PhaseTimer } from '../metrics/timer.ts';
import { writeWhileRunning, type LiveIoOptions } from './live-io.ts';
import { countNosave, DowntimeClock, fixPageSet, freezeTasks, memoryAtAtomic, moveOracleTime, assertNoPagesAdded, PageSetBits, recordAtomicPoint, captureSavedContext } from './common.ts';
import { forEachRun } from '../pages/page-set.ts';
import type { PrecopyRound, SaveContext, SaveReport, SaveStrategy } from './strategy.ts';
import { PAGE_SIZE } from '../units.ts';

export interface WpFullOptions extends LiveIoOptions {
  /** Pre-copy rounds after the first full pass (0 = none). Default 0. */
  readonly precopyRounds?: number;
  /** Stop pre-copying once a round leaves at most this many dirty pages. Default 64. */
  readonly stopThreshold?: number;
  /**
   * Measure the ground truth for the handler: keep a host copy of every protected page
   * when protection starts and count, at the atomic point, the pages whose contents
   * changed (live.pagesChanged) — a flagged page that did not change was written with
   * the same bytes, or is a false positive. Costs a copy of the image. Default false.
   */
  readonly measureWrites?: boolean;
  /** Copy frames reserved before the freeze beyond the pages unprotected then. Default 256. */
  readonly atomicMargin?: number;
}

/** Copy frames reserved before the freeze beyond the pages unprotected then (pages first written until the atomic point). */
const ATOMIC_MARGIN = 256;

export function wpFull(options: WpFullOptions = {}): SaveStrategy {
  return {
    name: 'wp-full',
    description: 'write-protect everything, write all memory while running, atomically copy only the pages that faulted (+ page tables)',
    save: (ctx) => saveWpFull(ctx, options),
  };
}

async function saveWpFull(ctx: SaveContext, options: WpFullOptions): Promise<SaveReport> {
  const { guest, swap, progress } = ctx;
  const m = guest.machine;
  const alloc = guest.allocator;
  const frames = alloc.frameCount;
  const timer = new PhaseTimer();

  const protector = new WriteProtector(guest);
  const policy = new DirtyTrackPolicy(guest, protector);
  const handler = new FaultHandler(guest, protector, policy);
  handler.install();
  try {
    // The guest does not allocate while its workloads run; the atomic section checks that.
    const pfns = fixPageSet(guest, protector);
    const forbidden = protector.forbidden();
    const protectable = pfns.filter((p) => !forbidden.has(p));
    const writer = new ImageWriter(swap, {
      pfns, buildId: m.options.image.buildId, ramBytes: m.ramBytes, frameCount: frames, strategy: 'wp-full',
    });
    const indexOf = new Map<number, number>();
    pfns.forEach((p, i) => indexOf.set(p, i));
    const writeRuns = (list: ArrayLike<number>) => {
      forEachRun(list, list, (_i, pfn, _d, n) => writer.writePages(indexOf.get(pfn)!, m.view(pfn * PAGE_SIZE, n * PAGE_SIZE)));
    };

    await timer.time('protect', () => protector.protect(protectable, 'wp-full'));
    const baseline = options.measureWrites ? snapshotPages(m.ram, protectable) : undefined;
    let pagesChanged: number | undefined;

    // Full pass, then pre-copy rounds, all while the guest runs.
    const rounds: PrecopyRound[] = [];
    let liveTicks = 0;
    await timer.time('live', async () => {
      let list: Uint32Array = pfns;
      for (let round = 0; ; round++) {
        const { ticks } = await writeWhileRunning(guest, list.length, options, progress, round === 0 ? 'write (live)' : `pre-copy round ${round}`, (first, n) => writeRuns(list.subarray(first, first + n)));
        liveTicks += ticks;
        const dirty = protectable.filter((p) => !protector.isProtected(p));
        rounds.push({ round, pagesWritten: list.length, dirtyAfter: dirty.length, ticks });
        const limit = options.precopyRounds ?? 0;
        const threshold = options.stopThreshold ?? 64;
        if (round >= limit) break;
        if (dirty.length <= threshold) break;
        if (round > 0 && dirty.length >= rounds[round - 1]!.dirtyAfter) break;
        policy.clear();
        protector.protect(dirty, 'wp-full');
        list = dirty;
      }
    });
    const last = rounds.at(-1)!;
    const limit = options.precopyRounds ?? 0;
    const stopReason = limit === 0 ? 'no pre-copy rounds asked' : last.dirtyAfter <= (options.stopThreshold ?? 64) ? 'threshold' : last.round >= limit ? 'round limit' : 'no progress';

    // What was written while running is made durable while the guest still runs: the
    // downtime's fsync then covers only the atomic copy, metadata and header.
    await timer.time('flush', () => swap.sync());

    // Freeze → atomic copy of what is not protected.
    // Made before the freeze, so that the atomic section only compares and merges.
    const pageSet = new PageSetBits(alloc, pfns);
    // The pages of the set that were never protected (page tables, stacks, descriptor
    // tables): with the fault bitmap's pages, exactly what is unprotected at the atomic point.
    const neverProtected = pfns.filter((p) => forbidden.has(p));
    const nosave = countNosave(alloc);
    // The frames for the atomic copy, reserved before the freeze: one for every page of
    // the set that is not protected now (only frames of the set are), plus a margin for
    // pages first written until the atomic point; more are taken there if that was short.
    const reserve = pfns.length - protector.protectedCount + (options.atomicMargin ?? ATOMIC_MARGIN);
    const reserved = alloc.allocFrames(reserve, OWNERS.SNAPSHOT.value);
    if (!reserved) throw new ProtocolError(`wp-full needs ${reserve} free frames for the atomic copy, only ${alloc.freeCount} are free`);
    let copies: Uint32Array = reserved;
    // The harness's own writes (here: the allocator's free count, in a kernel page that may
    // be protected and already written to the image) do not fault: mark that page dirty.
    policy.mark(alloc.layout.state >>> 12);
    protector.unprotect([alloc.layout.state >>> 12]);
    const clock = new DowntimeClock(guest);
    const tasksFrozen = await freezeTasks(guest, timer, clock);
    let toCopy: Uint32Array = new Uint32Array(0);
    let memory: SaveReport['memory'] | undefined;
    let savedContext: SavedContext | undefined;
    let oracleMs = 0;
    let measureMs = 0;
    let checkMs = 0;
    let copyFramesAdded = 0;
    await timer.time('atomic', () =>
      guest.atomic(() => {
        // What to copy is what is not protected now. Every unprotect went through the
        // fault bitmap (the policy marks before it unprotects; the harness's own write
        // above too), so the bitmap, not a scan of every page, says so. The protection
        // stays on: the tracker's read-only bits are lifted in the copies of the page
        // tables (and in the oracle) instead, after the atomic section.
        toCopy = unprotectedAtAtomic(neverProtected, policy.dirtyPfns(), pageSet);
        if (toCopy.length > copies.length) {
          const more = alloc.allocFrames(toCopy.length - copies.length, OWNERS.SNAPSHOT.value);
          if (!more) throw new ProtocolError(`wp-full: ${toCopy.length} pages to copy atomically, ${copies.length} frames reserved and only ${alloc.freeCount} more free`);
          // Before the atomic point is recorded: the allocator's pages change, and they are in
          // toCopy already (its state page was marked dirty, its bitmap and owner map are never
          // protected), so the image and the oracle both see these frames taken.
          copies = Uint32Array.from([...copies, ...more]).sort();
          copyFramesAdded = more.length;
        }
        if (ctx.onOracle) {
          // Verification, like the oracle (not downtime): the bitmap agrees with the PTEs' truth.
          const t0 = performance.now();
          const scanned = pfns.filter((p) => !protector.isProtected(p));
          if (scanned.length !== toCopy.length || scanned.some((p, i) => p !== toCopy[i])) {
            throw new ProtocolError(`wp-full: the fault bitmap says ${toCopy.length} pages of the image are unprotected, the protector ${scanned.length}`);
          }
          checkMs = performance.now() - t0;
          clock.excludedMs += checkMs;
        }
        if (baseline) {
          // Instrumentation, like the oracle: not part of the downtime.
          const t0 = performance.now();
          pagesChanged = countChanged(m.ram, protectable, baseline);
          measureMs = performance.now() - t0;
          clock.excludedMs += measureMs;
        }
        oracleMs = recordAtomicPoint(ctx, clock, (oracle) => {
          const identity = new Int32Array(frames);
          for (let f = 0; f < frames; f++) identity[f] = f;
          protector.liftInto(new Uint32Array(oracle.ram.buffer, oracle.ram.byteOffset, oracle.ram.length >>> 2), identity, protectable);
        });
        assertNoPagesAdded(alloc, pageSet, 'the save');
        const ram = m.ram;
        forEachRun(toCopy, copies, (_i, src, dst, n) => ram.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + n) * PAGE_SIZE));
        memory = memoryAtAtomic(alloc, nosave);
        savedContext = captureSavedContext(guest);
      }),
    );
    const written = await timer.time('write', async () => {
      // Image indexes of the copied pages (both lists ascend: one merge), then each run
      // of consecutive indexes (whose copies are consecutive too) as one gathered write.
      const indexes = new Uint32Array(toCopy.length);
      for (let i = 0, j = 0; i < toCopy.length; i++) {
        while (pfns[j] !== toCopy[i]) j++;
        indexes[i] = j;
      }
      // Every run goes out at once, checksums owed: in the background, straight from the
      // copies to the disk where the file system allows (O_DIRECT). Meanwhile the tracker's
      // read-only bits come out of the page-table copies (runs holding one go out after
      // that) and the CRCs are taken from the copies.
      const owners = alloc.owners;
      const tableCopy = new Int32Array(frames).fill(-1);
      for (let i = 0; i < toCopy.length; i++) if (owners[toCopy[i]!] === OWNERS.PAGETABLE.value) tableCopy[toCopy[i]!] = copies[i]!;
      const holdsTable = (i: number, n: number) => {
        for (let k = i; k < i + n; k++) if (tableCopy[toCopy[k]!]! >= 0) return true;
        return false;
      };
      const writeRun = (index: number, copy: number, n: number) => writer.writePagesCrcsLater(index, m.view(copy * PAGE_SIZE, n * PAGE_SIZE));
      forEachRun(indexes, copies, (i, index, copy, n) => {
        if (!holdsTable(i, n)) writeRun(index, copy, n);
      });
      writer.startWriteback();
      protector.liftInto(m.ram32, tableCopy, protectable);
      forEachRun(indexes, copies, (i, index, copy, n) => {
        if (holdsTable(i, n)) writeRun(index, copy, n);
      });
      forEachRun(indexes, copies, (_i, index, copy, n) => writer.giveCrcs(index, pageCrcs(m.view(copy * PAGE_SIZE, n * PAGE_SIZE))));
      return writer.commitAsync({
        context: savedContext!,
        stats: { atomicCopyPages: toCopy.length, liveWrittenPages: rounds.reduce((a, r) => a + r.pagesWritten, 0), wpFaults: handler.stats.faults, precopyRounds: rounds.length - 1, frozenTasks: tasksFrozen },
      });
    });
    const downtime = clock.finish();
    const flagged = toCopy.filter((p) => !forbidden.has(p)).length;
    const bookkeeping = policy.frames.length;
    // The handler stays until the guest is off: pages are still protected while it shuts down.
    await timer.time('power-off', () => guest.powerOff());
    handler.uninstall();
    moveOracleTime(timer, oracleMs + checkMs);
    if (measureMs) {
      timer.phases.atomic = (timer.phases.atomic ?? 0) - measureMs;
      timer.phases.measure = measureMs;
    }
    return {
      strategy: 'wp-full',
      pagesSaved: written.pageCount,
      imageBytes: written.imageBytes,
      atomicCopyPages: toCopy.length,
      snapshotFrames: copies.length + bookkeeping,
      cachePagesDropped: 0,
      tasksFrozen,
      memory: memory!,
      phasesMs: timer.phases,
      downtime,
      // The atomic copy needs frames only for what is not protected at the atomic point.
      largestImageFraction: (frames - toCopy.length - bookkeeping) / frames,
      live: {
        faults: handler.stats.faults,
        pagesFaulted: handler.stats.perPage.size,
        flaggedPages: flagged,
        unprotectablePages: toCopy.length - flagged,
        rounds,
        stopReason,
        pageBytesWritten: written.pageBytesWritten,
        liveTicks,
        copyFramesAdded,
        ...(pagesChanged === undefined ? {} : { pagesChanged }),
      },
    };
  } finally {
    handler.uninstall();
  }
}

/** A host copy of the listed pages, back to back. */
function snapshotPages(ram: Uint8Array, pfns: Uint32Array): Uint8Array {
  const out = new Uint8Array(pfns.length * PAGE_SIZE);
  for (let i = 0; i < pfns.length; i++) out.set(ram.subarray(pfns[i]! * PAGE_SIZE, pfns[i]! * PAGE_SIZE + PAGE_SIZE), i * PAGE_SIZE);
  return out;
}

/** How many of the listed pages differ from their snapshot. */
function countChanged(ram: Uint8Array, pfns: Uint32Array, snapshot: Uint8Array): number {
  const now = Buffer.from(ram.buffer, ram.byteOffset, ram.byteLength);
  const then = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  let n = 0;
  for (let i = 0; i < pfns.length; i++) {
    if (now.compare(then, i * PAGE_SIZE, i * PAGE_SIZE + PAGE_SIZE, pfns[i]! * PAGE_SIZE, pfns[i]! * PAGE_SIZE + PAGE_SIZE) !== 0) n++;
  }
  return n;
}

/**
 * The page set's pages that are not protected at the atomic point, ascending: those never
 * protected, and those in the fault bitmap (both ascending; a page in both counts once).
 * Frames outside the page set are left out.
 */
export function unprotectedAtAtomic(neverProtected: Uint32Array, dirty: Uint32Array, pageSet: PageSetBits): Uint32Array {
  const out = new Uint32Array(neverProtected.length + dirty.length);
  return out.subarray(0, mergeInSet(neverProtected, dirty, pageSet.words, out));
}

/** unprotectedAtAtomic's merge into `out`, returning its length: nothing after the loop (a downtime's first call is optimized while it runs). */
function mergeInSet(neverProtected: Uint32Array, dirty: Uint32Array, words: Uint32Array, out: Uint32Array): number {
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < neverProtected.length || j < dirty.length) {
    const a = i < neverProtected.length ? neverProtected[i]! : 0xffffffff;
    const b = j < dirty.length ? dirty[j]! : 0xffffffff;
    if (a <= b) {
      out[n++] = a;
      i++;
      if (a === b) j++;
    } else {
      j++;
      if ((words[b >>> 5]! >>> (b & 31)) & 1) out[n++] = b;
    }
  }
  return n;
}

/** The CRC32 of every page of `data`. */
function pageCrcs(data: Uint8Array): Uint32Array {
  const out = new Uint32Array(data.length / PAGE_SIZE);
  crc32Pages(data, out, 0);
  return out;
}
