/**
 * dirty-track: remember that the page was written, unprotect it, retry.
 *
 * The fault bitmap (one bit per frame, set = written since the last clear()) lives in
 * guest frames taken from the guest's allocator (owner SNAPSHOT), as a kernel would
 * keep it in RAM; those frames are registered with the protector as forbidden (the
 * handler writes them). The frames need not be contiguous: word w of the bitmap is
 * word (w mod 1024) of frame `frames[w / 1024]`.
 */
import { OWNERS } from '../../abi.ts';
import type { Guest } from '../../machine/guest.ts';
import type { FaultContext, FaultDecision, FaultPolicy, PageFault } from '../faults.ts';
import type { WriteProtector } from '../protect.ts';
import { PAGE_SIZE } from '../../units.ts';

const BITS_PER_FRAME = PAGE_SIZE * 8;

export class DirtyTrackPolicy implements FaultPolicy {
  readonly name = 'dirty-track';
  /** The guest frames holding the fault bitmap. */
  readonly frames: Uint32Array;
  /** Pages marked since the last clear(). */
  dirtyCount = 0;
  private readonly frameCount: number;
  /** u32 index in guest RAM of the first word of each bitmap frame. */
  private readonly wordBase: Uint32Array;
  private disposed = false;

  constructor(readonly guest: Guest, readonly protector: WriteProtector) {
    this.frameCount = guest.allocator.frameCount;
    const pages = Math.ceil(this.frameCount / BITS_PER_FRAME);
    const frames = guest.allocator.allocFrames(pages, OWNERS.SNAPSHOT.value);
    if (!frames) throw new Error(`dirty-track: the fault bitmap needs ${pages} free frames, the guest has ${guest.allocator.freeCount}`);
    this.frames = frames;
    this.wordBase = frames.map((pfn) => pfn * 1024);
    protector.forbid(frames, 'the fault bitmap of dirty-track: the fault handler writes it');
    this.clear();
  }

  onFault(fault: PageFault, ctx: FaultContext): FaultDecision {
    this.mark(fault.pfn);
    ctx.protector.unprotectOne(fault.pfn);
    return 'retry';
  }

  /** Sets the frame's bit in the fault bitmap. */
  mark(pfn: number): void {
    const ram32 = this.guest.machine.ram32;
    const w = pfn >>> 5;
    const a = this.wordBase[w >>> 10]! + (w & 1023);
    const bit = 1 << (pfn & 31);
    const word = ram32[a]!;
    if (!(word & bit)) {
      ram32[a] = (word | bit) >>> 0;
      this.dirtyCount++;
    }
  }

  isDirty(pfn: number): boolean {
    const w = pfn >>> 5;
    return ((this.guest.machine.ram32[this.wordBase[w >>> 10]! + (w & 1023)]! >>> (pfn & 31)) & 1) === 1;
  }

  /** Every frame marked since the last clear(), ascending, read from the bitmap in guest memory. */
  dirtyPfns(): Uint32Array {
    const out = new Uint32Array(this.dirtyCount);
    const n = collectSetBits(this.guest.machine.ram32, this.wordBase, this.frameCount, out);
    if (n !== out.length) throw new Error(`dirty-track: the fault bitmap in guest memory has ${n} bits set, the handler marked ${out.length}`);
    return out;
  }

  /** Zeroes the fault bitmap. */
  clear(): void {
    const ram32 = this.guest.machine.ram32;
    for (const base of this.wordBase) ram32.fill(0, base, base + 1024);
    this.dirtyCount = 0;
  }

  /** Gives the bitmap frames back to the allocator. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.protector.unforbid(this.frames);
    this.guest.allocator.freeFrames(this.frames);
  }
}

/**
 * Writes the frame numbers whose bits are set into `out` (ascending; beyond its end
 * they are only counted) and returns how many there are. A loop with nothing after it:
 * it runs in downtimes, often on its first call, where V8 optimizes it while it runs and
 * would throw that code away at the first property read after the loop.
 */
function collectSetBits(ram32: Uint32Array, wordBase: Uint32Array, frameCount: number, out: Uint32Array): number {
  const words = Math.ceil(frameCount / 32);
  let n = 0;
  for (let w = 0; w < words; w++) {
    let word = ram32[wordBase[w >>> 10]! + (w & 1023)]!;
    while (word !== 0) {
      const pfn = w * 32 + (31 - Math.clz32(word & -word));
      if (pfn < frameCount) out[n++] = pfn;
      word = (word & (word - 1)) >>> 0;
    }
  }
  return n;
}
