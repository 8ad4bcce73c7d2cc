/**
 * The oracle: the exact machine state at the atomic point, which only an emulator can
 * give, taken by code that is not under test.
 *
 *   save session begins ─ OracleWatch.begin(): the guest's own write permission of
 *   │                     every linear page, from a walk of its page tables, before
 *   │                     any strategy protects anything
 *   atomic point ──────── watch.capture(): the allocator's bitmap and owner map (which
 *   │                     frames are in use and by whom), a copy of every frame the image
 *   │                     must hold, and the CPU context from the CPU itself (context.ts)
 *   resume ───────────── RESTORE_DONE: restored memory against the capture
 *                        RESUME_POINT: the CPU against the captured context
 *                        (verdict.ts judges it all)
 *
 * What the image must hold follows from the capture alone: every frame in use at the
 * atomic point, less the frames the hibernation itself took (owner SNAPSHOT) and NOSAVE
 * frames. What each saved page must hold is its captured bytes, with one derivation the
 * oracle makes itself: in page-table pages, a PTE whose R/W bit the harness's write
 * tracking had cleared at the atomic point must come back with the guest's own
 * permission (the bit set), since a resumed kernel has no tracker to answer its faults.
 */
import { OWNERS, ownerName } from '../abi.ts';
import type { Guest } from '../machine/guest.ts';
import { hugePageMemory } from '../machine/host-memory.ts';
import { PAGE_SIZE } from '../units.ts';
import { cpuContextNow, type CpuContext } from './context.ts';

const PRESENT = 1;
const WRITABLE = 2;
const LARGE = 0x80;

/** Taken when a save session begins: what the guest itself allows to be written. */
export class OracleWatch {
  /** Bit per 4 KiB linear page (4 GiB of linear space): the guest's own PDE and PTE both allow writes. */
  readonly writable: Uint32Array;
  private constructor(writable: Uint32Array) {
    this.writable = writable;
  }

  /** Walks the guest's page tables from CR3 now (before any strategy has protected a page). */
  static begin(guest: Guest): OracleWatch {
    const m = guest.machine;
    return new OracleWatch(writableLinearPages(m.ram32, m.cr(3), m.ramBytes));
  }

  /**
   * At the atomic point (the guest stopped at ATOMIC): which frames are in use and by
   * whom, a copy of every frame the image must hold (in use, less the hibernation's own
   * and NOSAVE: the frames nobody can judge need not be kept), and the CPU context.
   */
  capture(guest: Guest): Oracle {
    const m = guest.machine;
    const alloc = guest.allocator;
    const frameCount = alloc.frameCount;
    const words = Math.ceil(frameCount / 32);
    const bitmap = alloc.bitmap.slice(0, words);
    const owners = alloc.owners.slice(0, frameCount);
    const must = mustSaveWords(bitmap, owners, frameCount);
    // The frames' contents, run by run, into one buffer; slot[pfn] = its page's place + 1.
    const slot = new Int32Array(frameCount);
    let pages = 0;
    for (let w = 0; w < words; w++) pages += popcount(must[w]!);
    const copy = pageBuffer(pages * PAGE_SIZE);
    const ram = m.ram;
    let at = 0;
    let pfn = 0;
    while (pfn < frameCount) {
      if (!((must[pfn >>> 5]! >>> (pfn & 31)) & 1)) {
        pfn++;
        continue;
      }
      let end = pfn + 1;
      while (end < frameCount && (must[end >>> 5]! >>> (end & 31)) & 1) end++;
      copy.set(ram.subarray(pfn * PAGE_SIZE, end * PAGE_SIZE), at * PAGE_SIZE);
      for (let p = pfn; p < end; p++) slot[p] = ++at;
      pfn = end;
    }
    return new Oracle({
      pages: copy,
      slot,
      bitmap,
      owners,
      cpu: cpuContextNow(m),
      instructions: m.instructionsNow(),
      frameCount,
      writable: this.writable,
    });
  }
}

export interface OracleCapture {
  /** The frames the image must hold, back to back, as they were at the atomic point. */
  readonly pages: Uint8Array;
  /** slot[pfn] - 1 = the place of frame pfn's page in `pages`; 0 = not kept. */
  readonly slot: Int32Array;
  /** The allocator's bitmap and owner map at the atomic point. */
  readonly bitmap: Uint32Array;
  readonly owners: Uint8Array;
  /** The saved context, from the CPU at the ATOMIC hypercall. */
  readonly cpu: CpuContext;
  /** Guest instructions retired at the atomic point. */
  readonly instructions: number;
  readonly frameCount: number;
  /** The guest's own write permissions (OracleWatch.writable). */
  readonly writable: Uint32Array;
}

/** A frame, and who owned it at the atomic point. */
export interface FrameRef {
  readonly pfn: number;
  readonly owner: string;
}

/** What the oracle derived in the expected bytes, and why. */
export interface Derivation {
  /** Page-table pages whose expected bytes differ from the capture. */
  readonly pageTables: number;
  /** PTEs whose R/W bit is expected set although it was clear at the atomic point. */
  readonly writeBitsRestored: number;
  readonly why: string;
}

export class Oracle implements OracleCapture {
  readonly pages: Uint8Array;
  readonly slot: Int32Array;
  readonly bitmap: Uint32Array;
  readonly owners: Uint8Array;
  readonly cpu: CpuContext;
  readonly instructions: number;
  readonly frameCount: number;
  readonly writable: Uint32Array;
  #expected: { pages: Map<number, Uint8Array>; derivation: Derivation } | undefined;

  constructor(capture: OracleCapture) {
    this.pages = capture.pages;
    this.slot = capture.slot;
    this.bitmap = capture.bitmap;
    this.owners = capture.owners;
    this.cpu = capture.cpu;
    this.instructions = capture.instructions;
    this.frameCount = capture.frameCount;
    this.writable = capture.writable;
  }

  /** Owner of a frame at the atomic point, by the guest's own owner map. */
  owner(pfn: number): string {
    return ownerName(this.owners[pfn] ?? 0);
  }

  frame(pfn: number): FrameRef {
    return { pfn, owner: this.owner(pfn) };
  }

  /** Frame `pfn` as it was at the atomic point (a frame the image must hold), or undefined. */
  page(pfn: number): Uint8Array | undefined {
    const s = this.slot[pfn];
    return s ? this.pages.subarray((s - 1) * PAGE_SIZE, s * PAGE_SIZE) : undefined;
  }

  /** The u32 at physical `address` at the atomic point (in a frame the image must hold). */
  read32(address: number): number {
    const page = this.page(Math.floor(address / PAGE_SIZE));
    if (!page) throw new RangeError(`the oracle kept no copy of the frame of ${address}`);
    const o = address % PAGE_SIZE;
    return (page[o]! | (page[o + 1]! << 8) | (page[o + 2]! << 16) | (page[o + 3]! << 24)) >>> 0;
  }

  /**
   * The frames the image must hold, as allocator-bitmap words: in use at the atomic point,
   * not the hibernation's own (SNAPSHOT), not NOSAVE.
   */
  mustSave(): Uint32Array {
    return mustSaveWords(this.bitmap, this.owners, this.frameCount);
  }

  /** Frames the hibernation itself had taken at the atomic point (owner SNAPSHOT). */
  hibernationFrames(): number {
    return countOwner(this.owners, OWNERS.SNAPSHOT.value);
  }

  /**
   * The bytes a saved page must hold after the restore: the captured page, or for a page
   * table whose PTEs the write tracking had made read-only, the captured page with the
   * guest's own R/W bits (see the module comment).
   */
  expectedPage(pfn: number): Uint8Array | undefined {
    return this.expected().pages.get(pfn) ?? this.page(pfn);
  }

  /** What the expected bytes derive beyond the capture (nothing for saves that protect nothing at the atomic point). */
  derivation(): Derivation {
    return this.expected().derivation;
  }

  private expected(): { pages: Map<number, Uint8Array>; derivation: Derivation } {
    this.#expected ??= restoreWritePermissions(this);
    return this.#expected;
  }
}

/**
 * The page-table pages reachable from the captured CR3 whose present PTEs deny writes the
 * guest's own tables allowed when the session began: their expected bytes, R/W set again.
 */
function restoreWritePermissions(o: Oracle): { pages: Map<number, Uint8Array>; derivation: Derivation } {
  const pages = new Map<number, Uint8Array>();
  const pdPage = o.page(o.cpu.cr3 >>> 12);
  let restored = 0;
  for (let i = 0; pdPage && i < 1024; i++) {
    const pde = u32(pdPage, i);
    if (!(pde & PRESENT) || pde & LARGE) continue;
    const table = pde >>> 12;
    const captured = o.page(table);
    if (!captured) continue;
    let copy: Uint8Array | undefined;
    for (let j = 0; j < 1024; j++) {
      const pte = u32(captured, j);
      if (!(pte & PRESENT) || pte & WRITABLE) continue;
      const linear = (i << 10) | j;
      if (!((o.writable[linear >>> 5]! >>> (linear & 31)) & 1)) continue;
      copy ??= captured.slice();
      copy[j * 4] = copy[j * 4]! | WRITABLE;
      restored++;
    }
    if (copy) pages.set(table, copy);
  }
  return {
    pages,
    derivation: {
      pageTables: pages.size,
      writeBitsRestored: restored,
      why: restored
        ? "the save's write tracking had cleared these PTEs' R/W bits at the atomic point; a resumed kernel has no tracker, so the oracle expects the guest's own permissions (from its page tables when the save began)"
        : 'none: the image must equal the capture byte for byte',
    },
  };
}

function u32(page: Uint8Array, index: number): number {
  const o = index * 4;
  return (page[o]! | (page[o + 1]! << 8) | (page[o + 2]! << 16) | (page[o + 3]! << 24)) >>> 0;
}

/** In use, less the hibernation's own (SNAPSHOT) and NOSAVE, as bitmap words over `frameCount` frames. */
function mustSaveWords(bitmap: Uint32Array, owners: Uint8Array, frameCount: number): Uint32Array {
  const words = Math.ceil(frameCount / 32);
  const bits = bitmap.slice(0, words);
  const tail = frameCount % 32;
  if (tail) bits[words - 1] = (bits[words - 1]! & ((1 << tail) - 1)) >>> 0;
  for (const owner of [OWNERS.SNAPSHOT.value, OWNERS.NOSAVE.value]) {
    for (let pfn = owners.indexOf(owner); pfn >= 0 && pfn < frameCount; pfn = owners.indexOf(owner, pfn + 1)) bits[pfn >>> 5] = (bits[pfn >>> 5]! & ~(1 << (pfn & 31))) >>> 0;
  }
  return bits;
}

/**
 * Host memory for the capture. Fresh memory costs a page fault per 4 KiB page at its
 * first touch; for a large capture the buffer asks for huge pages, as guest RAM does.
 */
function pageBuffer(bytes: number): Uint8Array {
  if (bytes < HUGE_CAPTURE_BYTES) return new Uint8Array(bytes);
  return hugePageMemory(bytes).bytes;
}

const HUGE_CAPTURE_BYTES = 16 << 20;

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** The guest's own write permission per 4 KiB linear page: present and R/W in both its PDE and its PTE. */
function writableLinearPages(ram32: Uint32Array, cr3: number, ramBytes: number): Uint32Array {
  const out = new Uint32Array((1 << 20) / 32);
  const pd = (cr3 & ~0xfff) >>> 0;
  const inRam = (addr: number) => addr + PAGE_SIZE <= ramBytes;
  if (!inRam(pd)) return out;
  for (let i = 0; i < 1024; i++) {
    const pde = ram32[(pd >>> 2) + i]!;
    if (!(pde & PRESENT) || !(pde & WRITABLE)) continue;
    if (pde & LARGE) {
      out.fill(0xffffffff, (i << 10) >>> 5, ((i + 1) << 10) >>> 5);
      continue;
    }
    const table = (pde & ~0xfff) >>> 0;
    if (!inRam(table)) continue;
    for (let j = 0; j < 1024; j++) {
      const pte = ram32[(table >>> 2) + j]!;
      if (pte & PRESENT && pte & WRITABLE) {
        const linear = (i << 10) | j;
        out[linear >>> 5] = (out[linear >>> 5]! | (1 << (linear & 31))) >>> 0;
      }
    }
  }
  return out;
}

function countOwner(owners: Uint8Array, owner: number): number {
  let n = 0;
  for (let pfn = owners.indexOf(owner); pfn >= 0; pfn = owners.indexOf(owner, pfn + 1)) n++;
  return n;
}
