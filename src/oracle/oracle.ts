/**
 * The oracle: the exact machine state at the atomic point, which only an emulator can
 * give, taken by code that is not under test.
 *
 *   save session begins ─ OracleWatch.begin(): the guest's own write permission of
 *   │                     every linear page, from a walk of its page tables, before
 *   │                     any strategy protects anything
 *   atomic point ──────── watch.capture(): a copy of all RAM (the allocator's bitmap and
 *   │                     owner map in it say which frames are in use and by whom) and
 *   │                     the CPU context from the CPU itself (context.ts)
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

  /** At the atomic point (the guest stopped at ATOMIC): RAM and the CPU context. */
  capture(guest: Guest): Oracle {
    const m = guest.machine;
    const layout = guest.allocator.layout;
    return new Oracle({
      ram: m.ram.slice(),
      cpu: cpuContextNow(m),
      instructions: m.instructionsNow(),
      frameCount: guest.allocator.frameCount,
      bitmapAddr: layout.bitmap,
      ownerMapAddr: layout.ownerMap,
      writable: this.writable,
    });
  }
}

export interface OracleCapture {
  /** A copy of all of RAM at the atomic point. */
  readonly ram: Uint8Array;
  /** The saved context, from the CPU at the ATOMIC hypercall. */
  readonly cpu: CpuContext;
  /** Guest instructions retired at the atomic point. */
  readonly instructions: number;
  readonly frameCount: number;
  /** Where the guest's allocator bitmap and owner map lie (inside `ram`). */
  readonly bitmapAddr: number;
  readonly ownerMapAddr: number;
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
  readonly ram: Uint8Array;
  readonly cpu: CpuContext;
  readonly instructions: number;
  readonly frameCount: number;
  readonly bitmapAddr: number;
  readonly ownerMapAddr: number;
  readonly writable: Uint32Array;
  #expected: { pages: Map<number, Uint8Array>; derivation: Derivation } | undefined;

  constructor(capture: OracleCapture) {
    this.ram = capture.ram;
    this.cpu = capture.cpu;
    this.instructions = capture.instructions;
    this.frameCount = capture.frameCount;
    this.bitmapAddr = capture.bitmapAddr;
    this.ownerMapAddr = capture.ownerMapAddr;
    this.writable = capture.writable;
  }

  /** Owner of a frame at the atomic point, by the guest's own owner map. */
  owner(pfn: number): string {
    return ownerName(this.ram[this.ownerMapAddr + pfn]!);
  }

  frame(pfn: number): FrameRef {
    return { pfn, owner: this.owner(pfn) };
  }

  /**
   * The frames the image must hold, as allocator-bitmap words: in use at the atomic point,
   * not the hibernation's own (SNAPSHOT), not NOSAVE.
   */
  mustSave(): Uint32Array {
    const words = Math.ceil(this.frameCount / 32);
    const bits = new Uint32Array(this.ram.buffer, this.ram.byteOffset + this.bitmapAddr, words).slice();
    const tail = this.frameCount % 32;
    if (tail) bits[words - 1] = (bits[words - 1]! & ((1 << tail) - 1)) >>> 0;
    const owners = this.ram.subarray(this.ownerMapAddr, this.ownerMapAddr + this.frameCount);
    for (const owner of [OWNERS.SNAPSHOT.value, OWNERS.NOSAVE.value]) {
      for (let pfn = owners.indexOf(owner); pfn >= 0; pfn = owners.indexOf(owner, pfn + 1)) bits[pfn >>> 5] = (bits[pfn >>> 5]! & ~(1 << (pfn & 31))) >>> 0;
    }
    return bits;
  }

  /** Frames the hibernation itself had taken at the atomic point (owner SNAPSHOT). */
  hibernationFrames(): number {
    return countOwner(this.ram.subarray(this.ownerMapAddr, this.ownerMapAddr + this.frameCount), OWNERS.SNAPSHOT.value);
  }

  /**
   * The bytes a saved page must hold after the restore: the captured page, or for a page
   * table whose PTEs the write tracking had made read-only, the captured page with the
   * guest's own R/W bits (see the module comment).
   */
  expectedPage(pfn: number): Uint8Array {
    return this.expected().pages.get(pfn) ?? this.ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
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
  const ram32 = new Uint32Array(o.ram.buffer, o.ram.byteOffset, o.ram.byteLength >>> 2);
  const pd = (o.cpu.cr3 & ~0xfff) >>> 0;
  let restored = 0;
  for (let i = 0; i < 1024; i++) {
    const pde = ram32[(pd >>> 2) + i]!;
    if (!(pde & PRESENT) || pde & LARGE) continue;
    const table = pde >>> 12;
    if (table >= o.frameCount) continue;
    let copy: Uint32Array | undefined;
    for (let j = 0; j < 1024; j++) {
      const pte = ram32[table * 1024 + j]!;
      if (!(pte & PRESENT) || pte & WRITABLE) continue;
      const linear = (i << 10) | j;
      if (!((o.writable[linear >>> 5]! >>> (linear & 31)) & 1)) continue;
      copy ??= ram32.slice(table * 1024, table * 1024 + 1024);
      copy[j] = (pte | WRITABLE) >>> 0;
      restored++;
    }
    if (copy) pages.set(table, new Uint8Array(copy.buffer));
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
