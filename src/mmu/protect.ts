/**
 * Write protection through the guest's own page tables.
 *
 * A protected page is a 4 KiB PTE with R/W cleared in guest memory: the PTE is the
 * truth, and v86's MMU makes a write to it raise a real #PF (CR0.WP binds the ring-0
 * kernel too). The protector keeps a host-side private view of what it protected and
 * why (`isProtected`, `reason`), which always agrees with the PTEs
 * (`checkConsistency()` compares them).
 *
 * - **Flushes.** Clearing R/W is only seen by the CPU once the stale TLB entry is gone:
 *   v86 keeps a writable entry for a page that was written since the last flush, and a
 *   write through it never faults. So every `protect()` call ends with exactly one
 *   invalidation step: INVLPG for each page it changed when they are few
 *   (`invlpgLimit`), one full TLB flush otherwise or when a 4 MiB page was split.
 *   Setting R/W back (`unprotect`) needs no flush: a faulting walk leaves no TLB entry,
 *   and a read-only entry makes the next write walk the tables again.
 * - **Large pages.** A frame inside a 4 MiB PSE mapping is protected by first splitting
 *   that mapping into a page table of 1024 PTEs with the same rights, in a frame taken
 *   from the guest's allocator (owner PAGETABLE, so it belongs to the guest and is
 *   saved with it).
 * - **Forbidden pages.** Pages that #PF delivery itself touches can never be protected:
 *   a fault while delivering a fault is not modelled by v86 (it recurses until the JS
 *   stack overflows). These are every task's kernel stack (ring 0 only: the CPU pushes
 *   the fault frame on the current task's stack), the GDT, IDT and TSS, the page
 *   directory and page tables, the allocator's bitmap and owner map, and whatever
 *   bookkeeping a fault policy registers with `forbid()` (the fault bitmap, the
 *   copy-before-write pool). `protect()` refuses them with a ForbiddenPageError before
 *   changing anything.
 *
 * Page-table pages change under the CPU without faults (v86 sets accessed/dirty bits
 * on every walk), so a save strategy must copy them inside its atomic section.
 */
import { CONSTANTS, OWNERS, ownerName } from '../abi.ts';
import type { Guest } from '../machine/guest.ts';
import type { Machine } from '../machine/machine.ts';
import { PTE } from './page-table.ts';
import { HiberlabError } from '../errors.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

const LARGE = 4 << 20;
/** PDE bits that carry over to every PTE of a split 4 MiB page (P, R/W, U/S, PWT, PCD, A, D, G). */
const SPLIT_PTE_BITS = 0x17f & ~PTE.PAGE_SIZE;
/** PDE bits kept in the PDE that now points to a page table (P, R/W, U/S, PWT, PCD, A). */
const SPLIT_PDE_BITS = 0x3f;

/** Asked to protect a page that #PF delivery (or the fault bookkeeping) needs writable. */
export class ForbiddenPageError extends HiberlabError<'FORBIDDEN_PAGE', { pfn: number; why: string }> {
  constructor(readonly pfn: number, readonly why: string) {
    super('FORBIDDEN_PAGE', `refusing to write-protect PFN ${hex(pfn)} (physical ${hex(pfn * PAGE_SIZE)}): ${why}`, { pfn, why });
  }
}

/** A page that cannot be protected for another reason (not mapped, out of range, aliased). */
export class ProtectError extends HiberlabError<'CANNOT_PROTECT', Record<string, never>> {
  constructor(message: string) {
    super('CANNOT_PROTECT', message, {});
  }
}

export interface WriteProtectorOptions {
  /**
   * A protect() call that changes at most this many PTEs (and splits nothing)
   * invalidates them one by one with INVLPG (cheap); more get one full TLB flush (and a page walk for every page the guest touches afterwards). Default 256.
   */
  readonly invlpgLimit?: number;
}

/** How the protector invalidated the TLB so far. */
export interface TlbStats {
  /** protect() calls that changed at least one PTE. */
  batches: number;
  /** Full TLB flushes. */
  fullFlushes: number;
  /** Pages invalidated one by one (INVLPG). */
  pagesInvalidated: number;
}

/** Where a frame's PTE is. */
export interface PteLocation {
  readonly pfn: number;
  readonly linear: number;
  /** Physical address of the PTE (or of the PDE, when `largePage`). */
  readonly entryAddr: number;
  readonly entry: number;
  readonly largePage: boolean;
}

const ALIASED = 2;

/** The registered-frames Map, mirrored into a per-frame flag (bit 0) for the hot checks. */
class FlaggedMap extends Map<number, string> {
  constructor(private readonly flags: Uint8Array) {
    super();
  }
  override set(pfn: number, why: string): this {
    if (pfn >= 0 && pfn < this.flags.length) this.flags[pfn] = this.flags[pfn]! | 1;
    return super.set(pfn, why);
  }
  override delete(pfn: number): boolean {
    if (pfn >= 0 && pfn < this.flags.length) this.flags[pfn] = this.flags[pfn]! & ~1;
    return super.delete(pfn);
  }
  override clear(): void {
    for (let i = 0; i < this.flags.length; i++) this.flags[i] = this.flags[i]! & ~1;
    super.clear();
  }
}

const OWNER_REASONS: ReadonlyMap<number, string> = new Map([
  [OWNERS.KSTACK.value, 'a kernel stack (owner KSTACK): #PF delivery pushes its frame on the current task\'s stack'],
  [OWNERS.PAGETABLE.value, 'a page directory or page table (owner PAGETABLE): the MMU walks it to deliver the fault and sets accessed/dirty bits in it'],
  [OWNERS.ALLOCATOR.value, 'the allocator\'s bitmap or owner map (owner ALLOCATOR): the fault bookkeeping allocates frames through it'],
]);
/** OWNER_REASONS as a table by owner byte, for the hot checks. */
const OWNER_FORBIDDEN = new Uint8Array(256);
for (const owner of OWNER_REASONS.keys()) OWNER_FORBIDDEN[owner] = 1;

export class WriteProtector {
  readonly machine: Machine;
  readonly frameCount: number;
  /** 4 MiB pages split into page tables so far. */
  splits = 0;
  readonly tlb: TlbStats = { batches: 0, fullFlushes: 0, pagesInvalidated: 0 };

  private readonly invlpgLimit: number;
  private readonly pd: number;
  /** Linear address mapping each frame (-1: not mapped); the guest identity-maps RAM. */
  private readonly linearOf: Int32Array;
  /** Frames mapped at more than one linear address (protecting one alias would leave the others writable). */
  private readonly aliased = new Set<number>();
  /**
   * Per frame: bit 0 = in `registered`, bit 1 = in `aliased`. The checks of protect()
   * read this array and look into the Map or Set only for a frame it flags (a save
   * protects 10^4–10^5 frames at a time).
   */
  private readonly special: Uint8Array;
  /** 0 = not protected, else an index into `reasons`. */
  private readonly reasonOf: Uint16Array;
  private readonly reasons: string[] = [''];
  private readonly reasonIndex = new Map<string, number>();
  /** Physical address of the PTE of each protected frame. */
  private readonly pteAddrOf: Uint32Array;
  /** Forbidden frames known by address (descriptor tables, task stacks, page tables, bookkeeping). */
  private readonly registered: FlaggedMap;
  private count = 0;

  constructor(readonly guest: Guest, options: WriteProtectorOptions = {}) {
    this.machine = guest.machine;
    this.frameCount = guest.allocator.frameCount;
    this.invlpgLimit = options.invlpgLimit ?? 256;
    this.pd = (this.machine.cr(3) & ~0xfff) >>> 0;
    this.reasonOf = new Uint16Array(this.frameCount);
    this.pteAddrOf = new Uint32Array(this.frameCount);
    this.linearOf = new Int32Array(this.frameCount).fill(-1);
    this.special = new Uint8Array(this.frameCount);
    this.registered = new FlaggedMap(this.special);
    this.buildReverseMap();
    this.registerSystemPages();
  }

  // ---------------------------------------------------------------- queries

  /** Frames currently protected. */
  get protectedCount(): number {
    return this.count;
  }

  isProtected(pfn: number): boolean {
    return !!this.reasonOf[pfn];
  }

  /** Why the frame is protected (the `reason` given to protect), or undefined. */
  reason(pfn: number): string | undefined {
    const i = this.reasonOf[pfn];
    return i ? this.reasons[i] : undefined;
  }

  /** Every protected frame, ascending. */
  protectedPfns(): Uint32Array {
    const out = new Uint32Array(this.count);
    let n = 0;
    for (let pfn = 0; pfn < this.frameCount && n < this.count; pfn++) if (this.reasonOf[pfn]) out[n++] = pfn;
    return out;
  }

  /**
   * Every frame that must never be protected, with why: the registered ones plus every
   * frame the allocator's owner map gives to KSTACK, PAGETABLE or ALLOCATOR right now.
   */
  forbidden(): ReadonlyMap<number, string> {
    const out = new Map(this.registered);
    const owners = this.guest.allocator.owners;
    for (let pfn = 0; pfn < this.frameCount; pfn++) {
      const why = OWNER_REASONS.get(owners[pfn]!);
      if (why && !out.has(pfn)) out.set(pfn, why);
    }
    return out;
  }

  /** Why a frame may not be protected, or undefined if it may. */
  whyForbidden(pfn: number): string | undefined {
    return this.registered.get(pfn) ?? OWNER_REASONS.get(this.guest.allocator.owners[pfn]!);
  }

  /** Registers frames that must never be protected (a policy's bookkeeping), with why. */
  forbid(pfns: ArrayLike<number>, why: string): void {
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      if (this.isProtected(pfn)) throw new ForbiddenPageError(pfn, `${why}; but it is write-protected now (${this.reason(pfn)}): unprotect it first`);
      this.registered.set(pfn, why);
    }
  }

  /** Drops frames registered with forbid() (their bookkeeping was freed). */
  unforbid(pfns: ArrayLike<number>): void {
    for (let i = 0; i < pfns.length; i++) this.registered.delete(pfns[i]!);
  }

  /** Where the frame's PTE is and what it holds now (undefined: the frame is not mapped). */
  pteOf(pfn: number): PteLocation | undefined {
    const linear = this.linearOf[pfn];
    if (linear === undefined || linear < 0) return undefined;
    const ram32 = this.machine.ram32;
    const pdeAddr = this.pd + ((linear >>> 22) << 2);
    const pde = ram32[pdeAddr >>> 2]!;
    if (pde & PTE.PAGE_SIZE) return { pfn, linear, entryAddr: pdeAddr, entry: pde, largePage: true };
    const pteAddr = ((pde & ~0xfff) >>> 0) + (((linear >>> 12) & 0x3ff) << 2);
    return { pfn, linear, entryAddr: pteAddr, entry: ram32[pteAddr >>> 2]!, largePage: false };
  }

  /**
   * Mismatches between the host-side view and the PTEs, as sentences (empty when they
   * agree): a protected frame whose PTE is writable, or a frame we do not hold whose
   * PTE is read-only.
   */
  checkConsistency(): string[] {
    const problems: string[] = [];
    for (let pfn = 0; pfn < this.frameCount && problems.length < 20; pfn++) {
      const loc = this.pteOf(pfn);
      if (!loc || !(loc.entry & PTE.PRESENT)) continue;
      const writable = (loc.entry & PTE.WRITABLE) !== 0;
      if (this.isProtected(pfn) && writable) problems.push(`PFN ${hex(pfn)} is protected (${this.reason(pfn)}) but its PTE ${hex(loc.entry)} is writable`);
      if (!this.isProtected(pfn) && !writable) problems.push(`PFN ${hex(pfn)} is not protected but its ${loc.largePage ? 'PDE' : 'PTE'} ${hex(loc.entry)} is read-only`);
    }
    return problems;
  }

  // ---------------------------------------------------------------- changes

  /**
   * Write-protects the frames, all or nothing: every frame is checked first (mapped,
   * not forbidden — a ForbiddenPageError names the first forbidden one and why), the
   * page-table frames for any 4 MiB splits are allocated, and only then are PTEs
   * changed, followed by one TLB invalidation step. Frames already protected get the
   * new reason.
   */
  protect(pfns: ArrayLike<number>, reason: string): void {
    const largePdes = this.checkAndSplit(pfns);
    this.clearWritable(pfns, reason, largePdes);
  }

  /**
   * The checks and 4 MiB splits of protect(), without protecting anything: a save
   * calls it before it fixes the image's page set, so the page-table frames a split
   * takes from the allocator are allocated (and saved) like any other. Flushes the
   * TLB if it split anything. Returns the number of 4 MiB pages split.
   */
  prepare(pfns: ArrayLike<number>): number {
    const largePdes = this.checkAndSplit(pfns);
    if (largePdes) {
      this.machine.flushTlb();
      this.tlb.fullFlushes++;
    }
    return largePdes?.size ?? 0;
  }

  /** Step 1 and 2 of protect(): check every frame, then split the 4 MiB pages that hold any. */
  private checkAndSplit(pfns: ArrayLike<number>): Set<number> | undefined {
    const owners = this.guest.allocator.owners;
    const ram32 = this.machine.ram32;
    // 1. Check everything before changing anything.
    let largePdes: Set<number> | undefined;
    const special = this.special;
    const linearOf = this.linearOf;
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.frameCount) throw new ProtectError(`cannot write-protect PFN ${pfn}: outside RAM (${this.frameCount} frames)`);
      const linear = linearOf[pfn]!;
      if (special[pfn] || OWNER_FORBIDDEN[owners[pfn]!] || linear < 0) {
        const why = this.registered.get(pfn) ?? OWNER_REASONS.get(owners[pfn]!);
        if (why) throw new ForbiddenPageError(pfn, why);
        if (linear < 0) throw new ProtectError(`cannot write-protect PFN ${hex(pfn)}: the guest's page tables do not map it`);
        if (this.aliased.has(pfn)) throw new ProtectError(`cannot write-protect PFN ${hex(pfn)}: it is mapped at more than one linear address`);
      }
      const pdeAddr = this.pd + ((linear >>> 22) << 2);
      if (ram32[pdeAddr >>> 2]! & PTE.PAGE_SIZE) (largePdes ??= new Set()).add(pdeAddr);
    }
    let tableFrames: Uint32Array | undefined;
    if (largePdes) {
      const targets = new Set<number>();
      for (let i = 0; i < pfns.length; i++) targets.add(pfns[i]!);
      tableFrames = this.guest.allocator.allocFrames(largePdes.size, OWNERS.PAGETABLE.value, (pfn) => !targets.has(pfn) && this.linearOf[pfn]! >= 0);
      if (!tableFrames) {
        throw new ProtectError(`cannot write-protect inside 4 MiB pages: splitting ${largePdes.size} of them needs ${largePdes.size} free frames for page tables, the guest has ${this.guest.allocator.freeCount}`);
      }
    }
    // 2. Split the 4 MiB pages.
    if (largePdes && tableFrames) {
      let k = 0;
      for (const pdeAddr of largePdes) this.split(pdeAddr, tableFrames[k++]!);
    }
    return largePdes;
  }

  /** Step 3 of protect(): clear R/W and invalidate (a full flush if anything was split). */
  private clearWritable(pfns: ArrayLike<number>, reason: string, largePdes: Set<number> | undefined): void {
    const ram32 = this.machine.ram32;
    // 3. Clear R/W.
    const idx = this.internReason(reason);
    const limit = largePdes ? 0 : this.invlpgLimit;
    const changed: number[] = [];
    let changes = 0;
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      if (this.reasonOf[pfn]) {
        this.reasonOf[pfn] = idx;
        continue;
      }
      const linear = this.linearOf[pfn]!;
      const pde = ram32[(this.pd + ((linear >>> 22) << 2)) >>> 2]!;
      const pteAddr = ((pde & ~0xfff) >>> 0) + (((linear >>> 12) & 0x3ff) << 2);
      ram32[pteAddr >>> 2] = ram32[pteAddr >>> 2]! & ~PTE.WRITABLE;
      this.pteAddrOf[pfn] = pteAddr;
      this.reasonOf[pfn] = idx;
      this.count++;
      if (++changes <= limit) changed.push(linear);
    }
    // 4. One invalidation step: never forgotten (see the file comment).
    if (changes === 0 && !largePdes) return;
    this.tlb.batches++;
    if (largePdes || changes > limit) {
      this.machine.flushTlb();
      this.tlb.fullFlushes++;
    } else {
      for (const linear of changed) this.machine.invalidatePage(linear);
      this.tlb.pagesInvalidated += changed.length;
    }
  }

  /** Sets R/W back on the frames that are protected (others are skipped). No flush is needed. */
  unprotect(pfns: ArrayLike<number>): void {
    for (let i = 0; i < pfns.length; i++) this.unprotectOne(pfns[i]!);
  }

  /** unprotect() for one frame, without an array (the fault handler's hot path). Returns whether it was protected. */
  unprotectOne(pfn: number): boolean {
    if (!this.reasonOf[pfn]) return false;
    const ram32 = this.machine.ram32;
    const a = this.pteAddrOf[pfn]! >>> 2;
    ram32[a] = ram32[a]! | PTE.WRITABLE;
    this.reasonOf[pfn] = 0;
    this.count--;
    return true;
  }

  /** Unprotects every frame, in one pass. Split 4 MiB pages stay split (their tables are guest frames now). */
  unprotectAll(): void {
    if (this.count === 0) return;
    const ram32 = this.machine.ram32;
    const reasonOf = this.reasonOf;
    const pteAddrOf = this.pteAddrOf;
    for (let pfn = 0; pfn < this.frameCount; pfn++) {
      if (!reasonOf[pfn]) continue;
      const a = pteAddrOf[pfn]! >>> 2;
      ram32[a] = ram32[a]! | PTE.WRITABLE;
      reasonOf[pfn] = 0;
    }
    this.count = 0;
  }

  /**
   * Sets R/W, in copies of the page tables, on the PTEs this protector cleared, and
   * leaves the live PTEs protected. `target` is memory as u32 words; the copy of page
   * table frame F starts at word `tableCopy[F] * 1024`. Only the frames in `pfns` are
   * looked at (all protected frames must be among them). A save that copied the page
   * tables atomically while pages were still protected thereby gets image tables (and
   * an oracle) without the tracker's read-only bits, without a pass over every PTE
   * inside its atomic section. Throws ProtectError if a PTE lies in a frame that is not
   * a page table by the owner map, or whose copy is missing (tableCopy -1). Returns
   * the PTEs changed.
   */
  liftInto(target: Uint32Array, tableCopy: Int32Array, pfns: ArrayLike<number>): number {
    const owners = this.guest.allocator.owners;
    const lifted = liftLoop(target, tableCopy, pfns, this.reasonOf, this.pteAddrOf, owners, OWNERS.PAGETABLE.value, PTE.WRITABLE);
    if (lifted < 0) {
      const pfn = -lifted - 1;
      const table = this.pteAddrOf[pfn]! >>> 12;
      throw new ProtectError(`the PTE of protected PFN ${hex(pfn)} is in frame ${hex(table)}, which ${tableCopy[table]! < 0 ? 'has no copy' : `is owned by ${ownerName(owners[table]!)}, not by the page tables`}`);
    }
    if (lifted !== this.count) throw new ProtectError(`liftInto: ${this.count} frames are protected, ${lifted} of them were among the ${pfns.length} given`);
    return lifted;
  }

  // ---------------------------------------------------------------- internals

  private internReason(reason: string): number {
    let idx = this.reasonIndex.get(reason);
    if (idx === undefined) {
      idx = this.reasons.length;
      if (idx > 0xffff) throw new ProtectError('more than 65535 distinct protection reasons');
      this.reasons.push(reason);
      this.reasonIndex.set(reason, idx);
    }
    return idx;
  }

  /** Replaces the 4 MiB mapping at `pdeAddr` by a page table in frame `tablePfn` with the same rights. */
  private split(pdeAddr: number, tablePfn: number): void {
    const ram32 = this.machine.ram32;
    const pde = ram32[pdeAddr >>> 2]!;
    const base = (pde & 0xffc00000) >>> 0;
    const bits = pde & SPLIT_PTE_BITS;
    const t = (tablePfn * PAGE_SIZE) >>> 2;
    for (let j = 0; j < 1024; j++) ram32[t + j] = (base + j * PAGE_SIZE + bits) >>> 0;
    ram32[pdeAddr >>> 2] = ((tablePfn * PAGE_SIZE) | (pde & SPLIT_PDE_BITS)) >>> 0;
    const linear = ((pdeAddr - this.pd) >>> 2) * LARGE;
    this.registered.set(tablePfn, `a page table (made by splitting the 4 MiB page at ${hex(linear)}): the MMU walks it to deliver the fault`);
    this.splits++;
  }

  /** Which linear address maps each frame, from one walk of the page tables. */
  private buildReverseMap(): void {
    const ram32 = this.machine.ram32;
    const set = (pfn: number, linear: number) => {
      if (pfn >= this.frameCount) return;
      if (this.linearOf[pfn]! >= 0) {
        this.aliased.add(pfn);
        this.special[pfn] = this.special[pfn]! | ALIASED;
      }
      else this.linearOf[pfn] = linear;
    };
    // The KMAP slots map a highmem frame only for a moment: no frame's mapping.
    const kmapPde = CONSTANTS.KMAP_BASE.value >>> 22;
    for (let i = 0; i < kmapPde; i++) {
      const pde = ram32[(this.pd >>> 2) + i]!;
      if (!(pde & PTE.PRESENT)) continue;
      if (pde & PTE.PAGE_SIZE) {
        const base = (pde & 0xffc00000) >>> 12;
        for (let j = 0; j < 1024; j++) set(base + j, (i * LARGE + j * PAGE_SIZE) >>> 0);
        continue;
      }
      const pt = (pde & ~0xfff) >>> 2;
      for (let j = 0; j < 1024; j++) {
        const pte = ram32[pt + j]!;
        if (pte & PTE.PRESENT) set(pte >>> 12, (i * LARGE + j * PAGE_SIZE) >>> 0);
      }
    }
  }

  /** The frames #PF delivery touches, known by address. */
  private registerSystemPages(): void {
    const m = this.machine;
    const bi = this.guest.bootInfo;
    const range = (start: number, bytes: number, why: string) => {
      for (let p = Math.floor(start / PAGE_SIZE); p * PAGE_SIZE < start + Math.max(bytes, 1); p++) if (!this.registered.has(p)) this.registered.set(p, why);
    };
    const lowmemFrames = Math.floor((bi.lowmem_bytes || bi.ram_bytes) / PAGE_SIZE);
    for (let p = lowmemFrames; p < this.frameCount; p++) {
      this.registered.set(p, 'highmem (lowmem=): the kernel maps it only for a moment, through a KMAP slot it makes writable each time, so a write cannot be caught');
    }
    const dt = m.descriptorTables();
    range(dt.idtBase, dt.idtLimit + 1, 'the IDT: #PF delivery reads the gate of vector 14 from it');
    range(dt.gdtBase, dt.gdtLimit + 1, 'the GDT: #PF delivery loads the code segment from it (and the CPU writes accessed/busy bits)');
    if (bi.idt_base !== dt.idtBase) range(bi.idt_base, 256 * 8, 'the IDT (boot_info.idt_base)');
    if (bi.gdt_base !== dt.gdtBase) range(bi.gdt_base, 8 * 4, 'the GDT (boot_info.gdt_base)');
    range(bi.tss_base, 104, 'the TSS: the CPU reads the ring-0 stack from it and writes the busy bit of its descriptor');
    this.registered.set(this.pd >>> 12, 'the page directory: the MMU walks it to deliver the fault and sets accessed bits in it');
    const ram32 = m.ram32;
    for (let i = 0; i < 1024; i++) {
      const pde = ram32[(this.pd >>> 2) + i]!;
      if ((pde & PTE.PRESENT) && !(pde & PTE.PAGE_SIZE)) {
        this.registered.set(pde >>> 12, `the page table for ${hex((i * LARGE))}-${hex(((i + 1) * LARGE - 1))}: the MMU walks it to deliver the fault and sets accessed/dirty bits in it`);
      }
    }
    for (const t of this.guest.tasks()) {
      if (!t.stackBytes) continue;
      range(t.stackBase, t.stackBytes, `the kernel stack of task ${t.id} (${t.name}): the guest runs in ring 0 only, so #PF delivery pushes its frame on the current task's stack`);
    }
    const owners = this.guest.allocator.owners;
    const { bitmap, ownerMap } = this.guest.allocator.layout;
    for (const a of [bitmap, ownerMap]) {
      const pfn = a >>> 12;
      if (!this.registered.has(pfn) && owners[pfn] !== OWNERS.ALLOCATOR.value) {
        this.registered.set(pfn, `the allocator's ${a === bitmap ? 'bitmap' : 'owner map'} (owner ${ownerName(owners[pfn]!)}): the fault bookkeeping allocates frames through it`);
      }
    }
  }
}

/**
 * liftInto's loop: a function of its arguments only, nothing after the loop. It runs
 * inside downtimes, where V8 often optimizes it while it runs (OSR): a field or module
 * binding read inside or after the loop would make that code slower or throw it away.
 * Returns the PTEs lifted, or -(pfn + 1) for the first protected frame whose PTE lies
 * in a frame without a copy or not owned by the page tables.
 */
function liftLoop(target: Uint32Array, tableCopy: Int32Array, pfns: ArrayLike<number>, reasonOf: Uint16Array, pteAddrOf: Uint32Array, owners: Uint8Array, pagetable: number, writable: number): number {
  let lifted = 0;
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (!reasonOf[pfn]) continue;
    const a = pteAddrOf[pfn]!;
    const table = a >>> 12;
    const to = tableCopy[table]!;
    if (to < 0 || owners[table] !== pagetable) return -pfn - 1;
    const w = to * 1024 + ((a & 0xfff) >>> 2);
    target[w] = target[w]! | writable;
    lifted++;
  }
  return lifted;
}
