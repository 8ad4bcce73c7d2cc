/**
 * copy-before-write: before the first write to a protected page, copy its original
 * contents into a frame of a reserve pool, then unprotect it and retry. Afterwards
 * `copyOf(pfn)` holds the page as it was when it was protected (the snapshot), while
 * the guest writes the original.
 *
 * Everything a kernel would keep in RAM lives in guest frames from the allocator
 * (owner SNAPSHOT), registered with the protector as forbidden: the pool itself and a
 * slot table (one u32 per pool frame: the PFN whose copy it holds, or FREE_SLOT),
 * like Linux's PBE list. The host keeps an index (PFN → slot) as its private view.
 *
 * When every pool frame holds a copy, what happens is the save strategy's decision:
 * the `onPoolExhausted(fault, ctx)` option answers like a policy (it may, for
 * instance, write the still unchanged page out first, unprotect it and retry); by
 * default the run stops with a PoolExhaustedError giving the numbers.
 */
import { OWNERS } from '../../abi.ts';
import { MachineError } from '../../machine/errors.ts';
import type { Guest } from '../../machine/guest.ts';
import { describeFault, type FaultContext, type FaultDecision, type FaultPolicy, type PageFault } from '../faults.ts';
import type { WriteProtector } from '../protect.ts';
import { PAGE_SIZE } from '../../units.ts';

/** Slot-table value of a pool frame that holds no copy. */
export const FREE_SLOT = 0xffffffff;

export interface CopyBeforeWriteOptions {
  /** Frames in the reserve pool. Default 256. */
  readonly poolPages?: number;
  /** What to do when the pool is full (default: stop with a PoolExhaustedError). */
  readonly onPoolExhausted?: (fault: PageFault, ctx: FaultContext) => FaultDecision;
}

/** The reserve pool ran out and nobody said what to do then. */
export class PoolExhaustedError extends MachineError<{ poolPages: number; copies: number; pfn: number }> {
  constructor(readonly poolPages: number, readonly copies: number, readonly fault: PageFault, where: string) {
    super(`copy-before-write: the reserve pool is exhausted (all ${poolPages} frames hold copies, ${copies} pages copied so far): cannot copy ${where} before the write`, 'POOL_EXHAUSTED', { poolPages, copies, pfn: fault.pfn });
  }
}

export class CopyBeforeWritePolicy implements FaultPolicy {
  readonly name = 'copy-before-write';
  readonly poolPages: number;
  /** The pool frames, slot i = pool[i]. */
  readonly pool: Uint32Array;
  /** The frames of the slot table. */
  readonly slotFrames: Uint32Array;
  /** Pages copied since the last clear() (copies currently held). */
  copies = 0;
  /** Copies made in total. */
  copiesMade = 0;
  private readonly onPoolExhausted: (fault: PageFault, ctx: FaultContext) => FaultDecision;
  /** Host-side index: PFN → slot + 1 (0 = no copy). */
  private readonly slotOf: Uint32Array;
  /** Free slots, a stack. */
  private readonly freeSlots: Uint32Array;
  private freeTop: number;
  private readonly slotWord0: number[];
  private disposed = false;

  constructor(readonly guest: Guest, readonly protector: WriteProtector, options: CopyBeforeWriteOptions = {}) {
    const alloc = guest.allocator;
    this.poolPages = options.poolPages ?? 256;
    if (!Number.isInteger(this.poolPages) || this.poolPages < 1) throw new RangeError(`copy-before-write: poolPages must be a whole number ≥ 1, got ${this.poolPages}`);
    const tablePages = Math.ceil((this.poolPages * 4) / PAGE_SIZE);
    const frames = alloc.allocFrames(this.poolPages + tablePages, OWNERS.SNAPSHOT.value);
    if (!frames) throw new Error(`copy-before-write: the reserve pool of ${this.poolPages} frames and its ${tablePages}-frame slot table need ${this.poolPages + tablePages} free frames, the guest has ${alloc.freeCount}`);
    this.slotFrames = frames.slice(0, tablePages);
    this.pool = frames.slice(tablePages);
    protector.forbid(this.pool, 'the copy-before-write reserve pool: the fault handler copies into it');
    protector.forbid(this.slotFrames, 'the copy-before-write slot table: the fault handler writes it');
    this.slotWord0 = [...this.slotFrames].map((pfn) => pfn * 1024);
    this.slotOf = new Uint32Array(alloc.frameCount);
    this.freeSlots = new Uint32Array(this.poolPages);
    this.freeTop = 0;
    this.onPoolExhausted = options.onPoolExhausted ?? ((fault, ctx) => ({ stop: new PoolExhaustedError(this.poolPages, this.copiesMade, fault, describeFault(fault, ctx.guest)) }));
    for (let i = 0; i < this.poolPages; i++) this.setSlot(i, FREE_SLOT);
    for (let i = this.poolPages - 1; i >= 0; i--) this.freeSlots[this.freeTop++] = i;
  }

  /** Every guest frame the policy holds (slot table + pool). */
  get frames(): Uint32Array {
    const out = new Uint32Array(this.slotFrames.length + this.pool.length);
    out.set(this.slotFrames);
    out.set(this.pool, this.slotFrames.length);
    return out;
  }

  /** Free pool frames. */
  get poolFree(): number {
    return this.freeTop;
  }

  onFault(fault: PageFault, ctx: FaultContext): FaultDecision {
    const pfn = fault.pfn;
    if (!this.slotOf[pfn]) {
      if (this.freeTop === 0) return this.onPoolExhausted(fault, ctx);
      const slot = this.freeSlots[--this.freeTop]!;
      const ram = this.guest.machine.ram;
      ram.copyWithin(this.pool[slot]! * PAGE_SIZE, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
      this.setSlot(slot, pfn);
      this.slotOf[pfn] = slot + 1;
      this.copies++;
      this.copiesMade++;
    }
    ctx.protector.unprotectOne(pfn);
    return 'retry';
  }

  /** The pool frame holding the copy of `pfn` (its contents when it was protected), or undefined. */
  copyOf(pfn: number): number | undefined {
    const s = this.slotOf[pfn];
    return s ? this.pool[s - 1] : undefined;
  }

  /** The original PFN whose copy pool slot `slot` holds, read from the slot table in guest memory (FREE_SLOT if none). */
  slotOwner(slot: number): number {
    return this.guest.machine.ram32[this.slotWord0[slot >>> 10]! + (slot & 1023)]!;
  }

  /** Returns the copy of `pfn` to the pool (it was written out). False if there was none. */
  release(pfn: number): boolean {
    const s = this.slotOf[pfn];
    if (!s) return false;
    this.slotOf[pfn] = 0;
    this.setSlot(s - 1, FREE_SLOT);
    this.freeSlots[this.freeTop++] = s - 1;
    this.copies--;
    return true;
  }

  /** Returns every copy to the pool. */
  clear(): void {
    for (let slot = 0; slot < this.poolPages; slot++) {
      const owner = this.slotOwner(slot);
      if (owner !== FREE_SLOT) this.release(owner);
    }
  }

  /** Gives the pool and the slot table back to the allocator. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const frames = this.frames;
    this.protector.unforbid(frames);
    this.guest.allocator.freeFrames(frames);
  }

  private setSlot(slot: number, value: number): void {
    this.guest.machine.ram32[this.slotWord0[slot >>> 10]! + (slot & 1023)] = value >>> 0;
  }
}
