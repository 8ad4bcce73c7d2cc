/**
 * The harness's hands on the guest's page-frame allocator.
 *
 * The guest keeps one `alloc_state` (src/abi.ts): a bitmap with one bit per frame
 * (1 = in use), an owner byte per frame, a free count and a search hint. While the
 * guest is stopped at a hypercall it is never inside its allocator, so the harness
 * may allocate and free through the very same structure, exactly as a kernel's
 * hibernation code calls the kernel's page allocator. Whatever the harness takes is
 * gone from the guest's free memory: limits such as swsusp's half-of-RAM rule follow.
 */
import { OWNERS } from '../abi.ts';
import { frameMask, popcount } from '../pages/page-set.ts';
import { fieldAddr, readStruct, type BootInfo } from './guest-structs.ts';
import type { Machine } from './machine.ts';
import { HiberlabError } from '../errors.ts';
import { hex } from '../units.ts';

export class AllocatorError extends HiberlabError<'ALLOCATOR', Record<string, never>> {
  constructor(message: string) {
    super('ALLOCATOR', message, {});
  }
}

export class GuestAllocator {
  readonly frameCount: number;
  private readonly stateAddr: number;
  private readonly bitmapAddr: number;
  private readonly ownerAddr: number;

  constructor(private readonly m: Machine, bootInfo: BootInfo) {
    this.stateAddr = bootInfo.alloc_state;
    const s = readStruct(m, 'alloc_state', this.stateAddr);
    this.frameCount = s.frame_count;
    this.bitmapAddr = s.bitmap;
    this.ownerAddr = s.owner_map;
    if (this.bitmapAddr & 3) throw new AllocatorError(`allocator bitmap at ${hex(this.bitmapAddr)} is not 4-byte aligned`);
  }

  /** Bitmap words (bit = frame in use); a live view on guest memory. */
  get bitmap(): Uint32Array {
    const ram32 = this.m.ram32;
    if (ram32 !== this.viewsOf) this.makeViews(ram32);
    return this.bitmapView!;
  }

  /** Owner byte per frame; a live view on guest memory. */
  get owners(): Uint8Array {
    const ram32 = this.m.ram32;
    if (ram32 !== this.viewsOf) this.makeViews(ram32);
    return this.ownersView!;
  }

  /** The views are made once per guest RAM buffer (v86 may replace it), not per call. */
  private viewsOf: Uint32Array | undefined;
  private bitmapView: Uint32Array | undefined;
  private ownersView: Uint8Array | undefined;

  private makeViews(ram32: Uint32Array): void {
    this.bitmapView = ram32.subarray(this.bitmapAddr >>> 2, (this.bitmapAddr >>> 2) + Math.ceil(this.frameCount / 32));
    this.ownersView = this.m.view(this.ownerAddr, this.frameCount);
    this.viewsOf = ram32;
  }

  get freeCount(): number {
    return this.m.readU32(fieldAddr('alloc_state', this.stateAddr, 'free_count'));
  }

  private set freeCount(v: number) {
    this.m.writeU32(fieldAddr('alloc_state', this.stateAddr, 'free_count'), v);
  }

  /** Where the bitmap and owner map live (pages the harness must not treat as ordinary data). */
  get layout(): { bitmap: number; ownerMap: number; state: number } {
    return { bitmap: this.bitmapAddr, ownerMap: this.ownerAddr, state: this.stateAddr };
  }

  isUsed(pfn: number): boolean {
    return ((this.bitmap[pfn >>> 5]! >>> (pfn & 31)) & 1) === 1;
  }

  owner(pfn: number): number {
    return this.owners[pfn]!;
  }

  /**
   * Allocates `count` free frames for `owner`, lowest PFN first, skipping frames for
   * which `accept` says no. All or nothing: returns undefined (and takes nothing) if
   * there are not enough.
   */
  allocFrames(count: number, owner: number, accept?: (pfn: number) => boolean): Uint32Array | undefined {
    if (count === 0) return new Uint32Array(0);
    if (count > this.freeCount) return undefined;
    const bm = this.bitmap;
    const own = this.owners;
    const out = new Uint32Array(count);
    let n = 0;
    for (let w = 0; w < bm.length && n < count; w++) {
      let word = bm[w]!;
      if (word === 0xffffffff) continue;
      for (let b = 0; b < 32 && n < count; b++) {
        if ((word >>> b) & 1) continue;
        const pfn = w * 32 + b;
        if (pfn >= this.frameCount) break;
        if (accept && !accept(pfn)) continue;
        out[n++] = pfn;
      }
    }
    if (n < count) return undefined;
    for (let i = 0; i < count; i++) {
      const pfn = out[i]!;
      bm[pfn >>> 5] = (bm[pfn >>> 5]! | (1 << (pfn & 31))) >>> 0;
      own[pfn] = owner;
    }
    this.freeCount = this.freeCount - count;
    return out;
  }

  /**
   * Allocates one frame for `owner` the way the guest's alloc_page does: the first free
   * frame at or after the allocator's search hint (wrapping around), the hint moved past
   * it. Undefined when no frame is free.
   */
  allocPage(owner: number): number | undefined {
    if (this.freeCount === 0) return undefined;
    const bm = this.bitmap;
    const words = bm.length;
    const hintAddr = fieldAddr('alloc_state', this.stateAddr, 'next_hint');
    let start = this.m.readU32(hintAddr);
    if (start >= this.frameCount) start = 0;
    const w0 = start >>> 5;
    for (let k = 0; k <= words; k++) {
      const w = (w0 + k) % words;
      let word = bm[w]!;
      if (k === 0) word = (word | ((1 << (start & 31)) - 1)) >>> 0; // below the hint: on the wrap
      word = (word | ~frameMask(w, this.frameCount)) >>> 0;
      if (word === 0xffffffff) continue;
      const free = ~word;
      const pfn = w * 32 + (31 - Math.clz32(free & -free));
      bm[w] = (bm[w]! | (1 << (pfn & 31))) >>> 0;
      this.owners[pfn] = owner;
      this.freeCount = this.freeCount - 1;
      this.m.writeU32(hintAddr, pfn + 1 < this.frameCount ? pfn + 1 : 0);
      return pfn;
    }
    throw new AllocatorError('free_count says a frame is free, the bitmap has none');
  }

  /** The allocator's search hint (where allocPage and the guest's alloc_page look first). */
  get nextHint(): number {
    return this.m.readU32(fieldAddr('alloc_state', this.stateAddr, 'next_hint'));
  }

  /** Takes one specific free frame; false if it is in use. */
  claim(pfn: number, owner: number): boolean {
    if (this.isUsed(pfn)) return false;
    const bm = this.bitmap;
    bm[pfn >>> 5] = (bm[pfn >>> 5]! | (1 << (pfn & 31))) >>> 0;
    this.owners[pfn] = owner;
    this.freeCount = this.freeCount - 1;
    return true;
  }

  /**
   * Takes every frame whose bit is set in `masks` (one word per bitmap word, for callers
   * that found their frames in the bitmap word by word). All must be free and below
   * frameCount (checked before anything is taken). Returns how many.
   */
  claimMasks(masks: Uint32Array, owner: number): number {
    const bm = this.bitmap;
    const own = this.owners;
    if (masks.length > bm.length) throw new RangeError(`claimMasks: ${masks.length} words for a bitmap of ${bm.length}`);
    for (let w = 0; w < masks.length; w++) {
      const mask = masks[w]!;
      if (mask === 0) continue;
      const clash = (bm[w]! & mask) >>> 0;
      if (clash !== 0) throw new AllocatorError(`frame ${hex((w * 32 + 31 - Math.clz32(clash & -clash)))} is not free`);
      if ((mask & ~frameMask(w, this.frameCount)) !== 0) {
        throw new AllocatorError(`frame ${hex((w * 32 + 31 - Math.clz32(mask)))} is beyond the ${this.frameCount} frames`);
      }
    }
    let n = 0;
    for (let w = 0; w < masks.length; w++) {
      let bits = masks[w]!;
      if (bits === 0) continue;
      bm[w] = (bm[w]! | bits) >>> 0;
      if (bits === 0xffffffff) {
        own.fill(owner, w * 32, w * 32 + 32);
        n += 32;
        continue;
      }
      while (bits !== 0) {
        own[w * 32 + 31 - Math.clz32(bits & -bits)] = owner;
        bits = (bits & (bits - 1)) >>> 0;
        n++;
      }
    }
    this.freeCount = this.freeCount - n;
    return n;
  }

  /**
   * allocFrames a word at a time: takes the `count` lowest free frames for `owner` and
   * returns them as masks, one per bitmap word (bit set = taken), for callers that go on
   * word by word or run by run. All or nothing: undefined (nothing taken) if there are
   * not enough.
   */
  allocMasks(count: number, owner: number): Uint32Array | undefined {
    const bm = this.bitmap;
    const masks = new Uint32Array(bm.length);
    if (count === 0) return masks;
    if (count > this.freeCount) return undefined;
    let left = count;
    for (let w = 0; w < bm.length && left > 0; w++) {
      let free = (~bm[w]! & frameMask(w, this.frameCount)) >>> 0;
      if (free === 0) continue;
      const n = free === 0xffffffff ? 32 : popcount(free);
      if (n <= left) {
        masks[w] = free;
        left -= n;
        continue;
      }
      // The lowest `left` free frames of this word.
      let take = 0;
      while (left > 0) {
        take = (take | (free & -free)) >>> 0;
        free = (free & (free - 1)) >>> 0;
        left--;
      }
      masks[w] = take;
    }
    if (left > 0) return undefined;
    this.claimMasks(masks, owner);
    return masks;
  }

  /** Gives frames back; each must be in use. */
  freeFrames(pfns: ArrayLike<number>): void {
    const bm = this.bitmap;
    const own = this.owners;
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      if (!((bm[pfn >>> 5]! >>> (pfn & 31)) & 1)) throw new AllocatorError(`double free of frame ${hex(pfn)}`);
      bm[pfn >>> 5] = (bm[pfn >>> 5]! & ~(1 << (pfn & 31))) >>> 0;
      own[pfn] = OWNERS.FREE.value;
    }
    this.freeCount = this.freeCount + pfns.length;
  }

  /** Frames in use, counted from the bitmap. */
  countUsed(): number {
    let n = 0;
    const bm = this.bitmap;
    const full = this.frameCount >>> 5;
    for (let w = 0; w < full; w++) n += popcount(bm[w]!);
    for (let pfn = full * 32; pfn < this.frameCount; pfn++) if (this.isUsed(pfn)) n++;
    return n;
  }

  /** Every broken invariant of the allocator, as sentences (empty when sound). */
  checkInvariants(): string[] {
    const problems: string[] = [];
    const own = this.owners;
    let used = 0;
    for (let pfn = 0; pfn < this.frameCount; pfn++) {
      const u = this.isUsed(pfn);
      if (u) used++;
      if (u !== (own[pfn] !== OWNERS.FREE.value) && problems.length < 10) {
        problems.push(`frame ${hex(pfn)}: bitmap says ${u ? 'used' : 'free'}, owner map says ${hex(own[pfn]!)}`);
      }
    }
    const free = this.frameCount - used;
    if (free !== this.freeCount) problems.push(`free_count is ${this.freeCount}, the bitmap has ${free} free frames`);
    return problems;
  }
}

