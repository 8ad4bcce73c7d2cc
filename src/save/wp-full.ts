/**
 * wp-full: Nigel Cunningham's "write everything while running, copy only what
 * faulted" (linux-pm, 2010), with optional pre-copy rounds as QEMU and Xen do.
 *
 *   make room for the fault bitmap, the never-protectable pages and a margin
 *   → fix the image's page set S (every saveable page now)
 *   → write-protect every page of S that #PF delivery does not need (one TLB flush)
 *   → write all of S to the image while the guest runs, at the I/O model's speed;
 *     a write to a protected page faults: dirty-track marks it in the fault bitmap
 *     (guest frames) and unprotects it
 *   → optional pre-copy rounds: re-protect the dirty pages and write them again,
 *     until few are left, the round limit is hit, or a round makes no progress
 *   → reserve frames for the atomic copy; if they do not fit, make room (the session
 *     drops cache) and begin again with a new page set, now knowing the working set
 *   → freeze; atomic section: copy every page of S that is not protected now — the
 *     dirty ones and the ones that could never be protected (page tables, stacks,
 *     descriptor tables) — into the reserved frames
 *   → lift the tracker's read-only bits in the copies of the page tables (the resumed
 *     kernel has no tracker), write the copies over their earlier versions (stable:
 *     the writer may write them in the background and checksum them meanwhile);
 *     commit the signature, power off.
 *
 * A protected page has not changed since it was written (else it would have faulted),
 * so the image equals memory at the atomic point; the oracle checks it.
 */
import { OWNERS } from '../abi.ts';
import { declareOptions, declareStats, type OptionValues, type PrecopyRound } from '../declarations.ts';
import { ProtocolError } from '../machine/errors.ts';
import { FaultHandler } from '../mmu/faults.ts';
import { DirtyTrackPolicy } from '../mmu/policies/index.ts';
import { WriteProtector } from '../mmu/protect.ts';
import { bitmapPages } from '../pages/memory-bitmap.ts';
import { forEachRun, wordsOfFrames } from '../pages/page-set.ts';
import { PAGE_SIZE } from '../units.ts';
import { assertNoPagesAdded, fixPageSet, PageSetBits, saveablePfns } from './common.ts';
import { IO_OPTION, writeWhileRunning } from './live-io.ts';
import type { SaveSession } from './session.ts';
import { defineSaveStrategy, type ImageStream } from './strategy.ts';

const options = declareOptions({
  precopyRounds: { kind: 'integer', default: 0, min: 0, max: 10_000, help: 'pre-copy rounds after the first full pass (0: none)' },
  stopThreshold: { kind: 'integer', default: 64, min: 0, unit: 'pages', help: 'stop pre-copying once a round leaves at most this many dirty pages' },
  io: IO_OPTION,
  atomicMargin: { kind: 'integer', default: 256, min: 0, unit: 'pages', help: 'copy frames reserved before the freeze beyond the pages unprotected then (pages first written until the atomic point)' },
  measureWrites: { kind: 'boolean', default: false, help: 'keep a host copy of every protected page and count, at the atomic point, the pages whose contents changed (ground truth for the fault handler; costs a copy of the image)' },
});

const stats = declareStats({
  faults: { kind: 'count', help: 'write faults taken while the image was written' },
  pagesFaulted: { kind: 'pages', help: 'distinct pages that faulted', aka: 'QEMU dirty pages' },
  flaggedPages: { kind: 'pages', help: 'pages copied atomically because they faulted' },
  unprotectablePages: { kind: 'pages', help: 'pages copied atomically because they can never be protected (page tables, stacks, descriptor tables)' },
  rounds: { kind: 'rounds', help: 'the full pass (round 0) and the pre-copy rounds: pages written, pages dirty when the round ended', aka: 'QEMU dirty-sync-count' },
  stopReason: { kind: 'text', help: 'why pre-copying stopped' },
  liveTicks: { kind: 'ticks', help: 'guest timer ticks the guest ran while the image was written' },
  copyFramesAdded: { kind: 'pages', help: 'copy frames taken at the atomic point because the reservation made before the freeze was short' },
  pagesChanged: { kind: 'pages', help: 'with measureWrites: protected pages whose contents really changed before the atomic point' },
  restarts: { kind: 'count', help: 'times the live write began again after making room for the atomic copy' },
});

export const wpFull = defineSaveStrategy({
  name: 'wp-full',
  description: 'write-protect everything, write all memory while running, atomically copy only the pages that faulted (+ page tables)',
  origin: 'Nigel Cunningham, "a new algorithm for reading & writing a hibernation image", linux-pm 2010',
  options,
  stats,
  save: saveWpFull,
});

type Options = OptionValues<typeof options>;

async function saveWpFull(session: SaveSession, o: Options) {
  const { guest } = session;
  const m = session.machine;
  const alloc = session.allocator;
  const frames = alloc.frameCount;
  const protector = new WriteProtector(guest);
  let workingSet = 0;
  for (let restarts = 0; ; restarts++) {
    // Room for the fault bitmap, the pages that can never be protected, the margin, and
    // (once an attempt has measured it) the working set of the live write.
    await session.time('prepare', () =>
      session.makeRoom(
        () => bitmapPages(frames) + neverProtectable(session, protector) + o.atomicMargin + workingSet,
        (needed, free) => `cannot hibernate with wp-full: the fault bitmap and the atomic copy need ${needed} free frames, only ${free} of ${frames} are free`,
      ),
    );
    const policy = new DirtyTrackPolicy(guest, protector);
    const handler = new FaultHandler(guest, protector, policy).install();
    let committed = false;
    try {
      const attempt = await liveWrite(session, o, protector, policy);
      const reserve = attempt.unprotected + o.atomicMargin;
      if (alloc.freeCount < reserve && guest.cachePages > 0 && restarts === 0) {
        // The working set is known now; the image's page set must shrink before it can
        // have room, so this attempt's image is given up and the save begins again.
        workingSet = attempt.unprotected;
        protector.unprotectAll();
        handler.uninstall();
        policy.dispose();
        continue;
      }
      const reserved = alloc.allocFrames(reserve, OWNERS.SNAPSHOT.value);
      if (!reserved) {
        await session.refuse(`cannot hibernate with wp-full: the atomic copy needs ${reserve} free frames (${attempt.unprotected} pages not protected now, a margin of ${o.atomicMargin}), only ${alloc.freeCount} are free`, {
          needed: reserve, free: alloc.freeCount, frames,
        });
      }
      const result = await atomicCopyAndWrite(session, o, protector, policy, handler, attempt, reserved!);
      committed = true;
      // The handler stays until the guest is off: pages are still protected while it shuts down.
      session.afterPowerOff(() => handler.uninstall());
      return { ...result, stats: { ...result.stats, restarts } };
    } finally {
      if (!committed && m.alive && handler.isInstalled) {
        protector.unprotectAll();
        handler.uninstall();
        policy.dispose();
      }
    }
  }
}

/** Saveable pages that can never be write-protected (page tables, stacks, descriptor tables, the handler's own frames). */
function neverProtectable(session: SaveSession, protector: WriteProtector): number {
  const forbidden = protector.forbidden();
  let n = 0;
  for (const pfn of saveablePfns(session.allocator)) if (forbidden.has(pfn)) n++;
  return n;
}

interface LiveAttempt {
  readonly pfns: Uint32Array;
  readonly protectable: Uint32Array;
  readonly neverProtected: Uint32Array;
  readonly image: ImageStream;
  readonly rounds: PrecopyRound[];
  readonly stopReason: string;
  readonly liveTicks: number;
  /** Pages of the set not protected when the live write ended. */
  readonly unprotected: number;
  /** measureWrites: the protected pages as they were when protection began. */
  readonly baseline?: Uint8Array;
}

/** Fixes the page set, protects it, writes it all while the guest runs, and the pre-copy rounds. */
async function liveWrite(session: SaveSession, o: Options, protector: WriteProtector, policy: DirtyTrackPolicy): Promise<LiveAttempt> {
  const { guest, progress } = session;
  const m = session.machine;
  // The guest does not allocate while its workloads run; the atomic section checks that.
  const pfns = fixPageSet(guest, protector);
  const forbidden = protector.forbidden();
  const protectable = pfns.filter((p) => !forbidden.has(p));
  const neverProtected = pfns.filter((p) => forbidden.has(p));
  const image = await session.openImage(pfns);
  const writeList = (list: Uint32Array) => {
    forEachRun(list, list, (_i, pfn, _d, n) => image.write(image.indexOf(pfn), m.view(pfn * PAGE_SIZE, n * PAGE_SIZE)));
  };
  await session.time('protect', () => protector.protect(protectable, 'wp-full'));
  const baseline = o.measureWrites ? snapshotPages(m.ram, protectable) : undefined;
  const rounds: PrecopyRound[] = [];
  let liveTicks = 0;
  await session.time('live', async () => {
    let list: Uint32Array = pfns;
    for (let round = 0; ; round++) {
      const { ticks } = await writeWhileRunning(guest, list.length, o.io, progress, round === 0 ? 'write (live)' : `pre-copy round ${round}`, (first, n) => writeList(list.subarray(first, first + n)));
      liveTicks += ticks;
      const dirty = protectable.filter((p) => !protector.isProtected(p));
      rounds.push({ round, pagesWritten: list.length, dirtyAfter: dirty.length, ticks });
      if (round >= o.precopyRounds || dirty.length <= o.stopThreshold) break;
      if (round > 0 && dirty.length >= rounds[round - 1]!.dirtyAfter) break;
      policy.clear();
      protector.protect(dirty, 'wp-full');
      list = dirty;
    }
  });
  const last = rounds.at(-1)!;
  const stopReason = o.precopyRounds === 0 ? 'no pre-copy rounds asked' : last.dirtyAfter <= o.stopThreshold ? 'threshold' : last.round >= o.precopyRounds ? 'round limit' : 'no progress';
  // What was written while running is made durable while the guest still runs: the
  // downtime's fsync then covers only the atomic copy, metadata and header.
  await session.time('flush', () => session.swap.sync());
  return { pfns, protectable, neverProtected, image, rounds, stopReason, liveTicks, unprotected: pfns.length - protector.protectedCount, baseline };
}

/** Freeze, the atomic copy of what is not protected, the write of the copies, the commit. */
async function atomicCopyAndWrite(session: SaveSession, o: Options, protector: WriteProtector, policy: DirtyTrackPolicy, handler: FaultHandler, attempt: LiveAttempt, reserved: Uint32Array) {
  const m = session.machine;
  const alloc = session.allocator;
  const frames = alloc.frameCount;
  const { pfns, protectable, neverProtected, image } = attempt;
  let copies: Uint32Array = reserved;
  // Made before the freeze, so that the atomic section only compares and merges.
  const pageSet = new PageSetBits(alloc, pfns);
  // The harness's own writes (here: the allocator's free count, in a kernel page that may
  // be protected and already written to the image) do not fault: mark that page dirty.
  policy.mark(alloc.layout.state >>> 12);
  protector.unprotect([alloc.layout.state >>> 12]);
  await session.freeze();
  let toCopy: Uint32Array = new Uint32Array(0);
  let copyFramesAdded = 0;
  let pagesChanged: number | undefined;
  await session.atomic((atomicPoint) => {
    // What to copy is what is not protected now. Every unprotect went through the fault
    // bitmap (the policy marks before it unprotects; the harness's own write above too),
    // so the bitmap, not a scan of every page, says so. The protection stays on: the
    // tracker's read-only bits are lifted in the copies of the page tables afterwards.
    toCopy = unprotectedAtAtomic(neverProtected, policy.dirtyPfns(), pageSet);
    if (toCopy.length > copies.length) {
      const more = alloc.allocFrames(toCopy.length - copies.length, OWNERS.SNAPSHOT.value);
      if (!more) throw new ProtocolError(`wp-full: ${toCopy.length} pages to copy atomically, ${copies.length} frames reserved and only ${alloc.freeCount} more free`);
      // Before the atomic point: the allocator's pages change, and they are in toCopy
      // already (its state page was marked dirty, its bitmap and owner map are never
      // protected), so the image and the oracle both see these frames taken.
      copies = Uint32Array.from([...copies, ...more]).sort();
      copyFramesAdded = more.length;
    }
    session.instrument('check', () => {
      // The fault bitmap agrees with the PTEs' truth.
      const scanned = pfns.filter((p) => !protector.isProtected(p));
      if (scanned.length !== toCopy.length || scanned.some((p, i) => p !== toCopy[i])) {
        throw new ProtocolError(`wp-full: the fault bitmap says ${toCopy.length} pages of the image are unprotected, the protector ${scanned.length}`);
      }
    });
    if (attempt.baseline) pagesChanged = session.instrument('measure', () => countChanged(m.ram, protectable, attempt.baseline!));
    atomicPoint();
    assertNoPagesAdded(alloc, pageSet, 'the save');
    const ram = m.ram;
    forEachRun(toCopy, copies, (_i, src, dst, n) => ram.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + n) * PAGE_SIZE));
  });
  const written = await session.time('write', () => {
    // The tracker's read-only bits come out of the page-table copies (the image's tables
    // carry none); then every copy goes to the stream as stable data (nothing writes the
    // copies before power-off): the writer writes them in the background, O_DIRECT where
    // it can, and checksums them meanwhile.
    const owners = alloc.owners;
    const tableCopy = new Int32Array(frames).fill(-1);
    for (let i = 0; i < toCopy.length; i++) if (owners[toCopy[i]!] === OWNERS.PAGETABLE.value) tableCopy[toCopy[i]!] = copies[i]!;
    protector.liftInto(m.ram32, tableCopy, protectable);
    // Image indexes of the copied pages (both lists ascend: one merge), then each run of
    // consecutive indexes (whose copies are consecutive too) as one write.
    const indexes = new Uint32Array(toCopy.length);
    for (let i = 0, j = 0; i < toCopy.length; i++) {
      while (pfns[j] !== toCopy[i]) j++;
      indexes[i] = j;
    }
    forEachRun(indexes, copies, (_i, index, copy, n) => image.write(index, m.view(copy * PAGE_SIZE, n * PAGE_SIZE), { stable: true }));
    return session.commit(image, {
      stats: { atomicCopyPages: toCopy.length, liveWrittenPages: attempt.rounds.reduce((a, r) => a + r.pagesWritten, 0), wpFaults: handler.stats.faults, precopyRounds: attempt.rounds.length - 1, frozenTasks: session.tasksFrozen },
    });
  });
  const forbidden = protector.forbidden();
  const flagged = toCopy.filter((p) => !forbidden.has(p)).length;
  return {
    image: written,
    atomicCopyPages: toCopy.length,
    faulted: wordsOfFrames([...handler.stats.perPage.keys()], frames),
    stats: {
      faults: handler.stats.faults,
      pagesFaulted: handler.stats.perPage.size,
      flaggedPages: flagged,
      unprotectablePages: toCopy.length - flagged,
      rounds: attempt.rounds,
      stopReason: attempt.stopReason,
      liveTicks: attempt.liveTicks,
      copyFramesAdded,
      ...(pagesChanged === undefined ? {} : { pagesChanged }),
    },
  };
}

/** A host copy of the listed pages, back to back. */
function snapshotPages(ram: Uint8Array, pfns: Uint32Array): Uint8Array {
  const out = new Uint8Array(pfns.length * PAGE_SIZE);
  for (let i = 0; i < pfns.length; i++) out.set(ram.subarray(pfns[i]! * PAGE_SIZE, (pfns[i]! + 1) * PAGE_SIZE), i * PAGE_SIZE);
  return out;
}

/** How many of the listed pages differ from their snapshot. */
function countChanged(ram: Uint8Array, pfns: Uint32Array, snapshot: Uint8Array): number {
  const now = Buffer.from(ram.buffer, ram.byteOffset, ram.byteLength);
  const then = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  let n = 0;
  for (let i = 0; i < pfns.length; i++) {
    if (now.compare(then, i * PAGE_SIZE, (i + 1) * PAGE_SIZE, pfns[i]! * PAGE_SIZE, (pfns[i]! + 1) * PAGE_SIZE) !== 0) n++;
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
