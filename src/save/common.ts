/**
 * Page sets of saves: the pages the image must hold (saveable), fixing that set before
 * the write protection needs its 4 MiB splits, and checking at the atomic point that it
 * did not change under a save that fixed it while the guest ran.
 */
import { OWNERS } from '../abi.ts';
import type { GuestAllocator } from '../machine/allocator.ts';
import { ProtocolError } from '../machine/errors.ts';
import type { Guest } from '../machine/guest.ts';
import type { WriteProtector } from '../mmu/protect.ts';
import { countBits, frameMask, framesOfWords, wordsOfFrames } from '../pages/page-set.ts';
import { hex } from '../units.ts';

/**
 * Splits the 4 MiB pages that protecting the saveable pages will need (their new page
 * tables are allocated and saved like any other page), then returns the image's page
 * set, fixed from here on.
 */
export function fixPageSet(guest: Guest, protector: WriteProtector): Uint32Array {
  const forbidden = protector.forbidden();
  protector.prepare(saveablePfns(guest.allocator).filter((p) => !forbidden.has(p)));
  return saveablePfns(guest.allocator);
}

/**
 * Frames whose contents the image must hold: in use, not taken by the hibernation
 * itself, and RAM (a NOSAVE frame is a hole in the memory map: the VGA window).
 */
export function saveablePfns(alloc: GuestAllocator): Uint32Array {
  return framesOfWords(saveableWords(alloc), alloc.frameCount);
}

/**
 * saveablePfns as allocator-bitmap words: the bitmap with the hibernation's own frames
 * and the non-RAM frames taken out. Word by word; the owner map is searched only for
 * those two owners (TypedArray.indexOf, native), not read frame by frame.
 */
export function saveableWords(alloc: GuestAllocator): Uint32Array {
  const words = alloc.bitmap.slice();
  words[words.length - 1] = (words[words.length - 1]! & frameMask(words.length - 1, alloc.frameCount)) >>> 0;
  const owners = alloc.owners;
  for (const owner of [OWNERS.SNAPSHOT.value, OWNERS.NOSAVE.value]) {
    for (let pfn = owners.indexOf(owner); pfn >= 0; pfn = owners.indexOf(owner, pfn + 1)) {
      words[pfn >>> 5] = (words[pfn >>> 5]! & ~(1 << (pfn & 31))) >>> 0;
    }
  }
  return words;
}

/** How the saveable pages now differ from a fixed set. */
export interface PageSetChanges {
  /** Saveable now, not in the set (the image would miss them). */
  readonly added: number;
  /** In the set, no longer in use. */
  readonly removed: number;
  readonly firstAdded?: number;
  readonly firstRemoved?: number;
}

/**
 * Compares the saveable pages now with `expected` (ascending) word by word of the
 * allocator bitmap: only the frames whose bit changed are looked at, so this costs
 * microseconds inside an atomic section rather than a scan of every frame.
 */
export function pageSetChanges(alloc: GuestAllocator, expected: Uint32Array | PageSetBits): PageSetChanges {
  const then = expected instanceof PageSetBits ? expected.words : new PageSetBits(alloc, expected).words;
  const out = new Int32Array(4);
  diffPageSet(alloc.bitmap, then, alloc.owners, alloc.frameCount, OWNERS.SNAPSHOT.value, OWNERS.NOSAVE.value, out);
  const [added, removed, firstAdded, firstRemoved] = out as unknown as [number, number, number, number];
  return { added, removed, ...(added ? { firstAdded } : {}), ...(removed ? { firstRemoved } : {}) };
}

/**
 * pageSetChanges' loop, a function of its arguments with nothing after the loop (it runs
 * in downtimes, where V8 optimizes it while it runs and would throw that code away at
 * the first property read after the loop). out: added, removed, first added, first removed.
 */
function diffPageSet(now: Uint32Array, then: Uint32Array, owners: Uint8Array, frameCount: number, snapshot: number, nosave: number, out: Int32Array): void {
  let added = 0;
  let removed = 0;
  for (let w = 0; w < now.length; w++) {
    const word = now[w]!;
    let diff = (word ^ then[w]!) >>> 0;
    while (diff !== 0) {
      const b = 31 - Math.clz32(diff & -diff);
      diff = (diff & (diff - 1)) >>> 0;
      const pfn = w * 32 + b;
      if (pfn >= frameCount) break;
      if ((word >>> b) & 1) {
        // Newly in use: saveable unless the hibernation took it or it is not RAM.
        if (owners[pfn] === snapshot || owners[pfn] === nosave) continue;
        if (added++ === 0) out[2] = pfn;
      } else if (removed++ === 0) out[3] = pfn;
    }
  }
  out[0] = added;
  out[1] = removed;
}

/** A page set as allocator-bitmap words, made before a downtime so that pageSetChanges inside it is only the comparison. */
export class PageSetBits {
  readonly words: Uint32Array;
  /** From the set's frames, or from its words (kept, not copied). */
  constructor(alloc: GuestAllocator, set: Uint32Array, form: 'frames' | 'words' = 'frames') {
    if (form === 'words') {
      if (set.length !== alloc.bitmap.length) throw new RangeError(`PageSetBits: ${set.length} words for a bitmap of ${alloc.bitmap.length}`);
      this.words = set;
    } else {
      this.words = wordsOfFrames(set, alloc.bitmap.length * 32);
    }
  }
}

/**
 * At the atomic point of a save that fixed its page set while the guest still ran:
 * pages freed since are harmless (saved anyway), pages newly in use are not (the image
 * would miss them).
 */
export function assertNoPagesAdded(alloc: GuestAllocator, pageSet: PageSetBits, during: string): void {
  const changes = pageSetChanges(alloc, pageSet);
  if (changes.added) throw new ProtocolError(`the guest started using ${changes.added} pages during ${during} (first PFN ${hex(changes.firstAdded!)}): they are not in the image`);
}

/** At the atomic point: the saveable pages must be exactly those fixed `since` (nothing allocated or freed). */
export function assertPageSetUnchanged(alloc: GuestAllocator, expected: Uint32Array | PageSetBits, since: string): void {
  const c = pageSetChanges(alloc, expected);
  if (c.added || c.removed) {
    const first = c.firstAdded ?? c.firstRemoved!;
    const pages = expected instanceof PageSetBits ? countBits(expected.words) : expected.length;
    throw new ProtocolError(
      `the set of saveable pages changed between ${since} (${pages} pages) and the atomic point: ` +
        `${c.added} pages newly in use, ${c.removed} freed (first: PFN ${hex(first)})`,
    );
  }
}
