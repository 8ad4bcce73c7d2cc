/**
 * The guest's two-level x86 page tables (no PAE), walked from CR3 in guest memory.
 *
 *   CR3 → page directory (1024 PDEs) → page table (1024 PTEs) → 4 KiB frame
 *                                    ↘ PDE with PS set (CR4.PSE): one 4 MiB frame
 */
import type { Machine } from '../machine/machine.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

export const PTE = {
  PRESENT: 1 << 0,
  WRITABLE: 1 << 1,
  USER: 1 << 2,
  ACCESSED: 1 << 5,
  DIRTY: 1 << 6,
  /** In a PDE: this entry maps a 4 MiB page. */
  PAGE_SIZE: 1 << 7,
  GLOBAL: 1 << 8,
} as const;

/** The bits of a PTE (or PDE) that hiberlab reads, by name. */
export interface EntryFlags {
  readonly present: boolean;
  readonly writable: boolean;
  readonly user: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  /** PS: a PDE that maps a 4 MiB page. */
  readonly pageSize: boolean;
  readonly global: boolean;
}

export function entryFlags(entry: number): EntryFlags {
  return {
    present: (entry & PTE.PRESENT) !== 0,
    writable: (entry & PTE.WRITABLE) !== 0,
    user: (entry & PTE.USER) !== 0,
    accessed: (entry & PTE.ACCESSED) !== 0,
    dirty: (entry & PTE.DIRTY) !== 0,
    pageSize: (entry & PTE.PAGE_SIZE) !== 0,
    global: (entry & PTE.GLOBAL) !== 0,
  };
}

/** "P RW A D" style: the set bits of an entry, for messages. */
export function describeEntry(entry: number, isPde = false): string {
  const names: Array<[number, string]> = [[PTE.PRESENT, 'P'], [PTE.WRITABLE, 'RW'], [PTE.USER, 'US'], [PTE.ACCESSED, 'A'], [PTE.DIRTY, 'D'], [PTE.PAGE_SIZE, isPde ? 'PS' : 'PAT'], [PTE.GLOBAL, 'G']];
  const set = names.filter(([bit]) => entry & bit).map(([, n]) => n);
  return `0x${(entry >>> 0).toString(16).padStart(8, '0')} (frame ${hex((entry >>> 12))}${set.length ? `, ${set.join(' ')}` : ''})`;
}

export interface Mapping {
  /** Linear address of the page's first byte. */
  readonly linear: number;
  /** Physical address it maps to. */
  readonly physical: number;
  /** Physical address of the entry that maps it (PTE, or PDE for a large page). */
  readonly entryAddr: number;
  readonly entry: number;
  /** 4096 or 4 MiB. */
  readonly size: number;
}

export class PageTableWalker {
  constructor(private readonly m: Machine, readonly cr3: number = m.cr(3)) {}

  private get pd(): number {
    return this.cr3 & ~0xfff;
  }

  /** The mapping of one linear address, or undefined if it is not present. */
  translate(linear: number): Mapping | undefined {
    const pdeAddr = this.pd + ((linear >>> 22) << 2);
    const pde = this.m.readU32(pdeAddr);
    if (!(pde & PTE.PRESENT)) return undefined;
    if (pde & PTE.PAGE_SIZE) {
      const base = (pde & 0xffc00000) >>> 0;
      return { linear: (linear & 0xffc00000) >>> 0, physical: base, entryAddr: pdeAddr, entry: pde, size: 4 << 20 };
    }
    const pteAddr = (pde & ~0xfff) + (((linear >>> 12) & 0x3ff) << 2);
    const pte = this.m.readU32(pteAddr);
    if (!(pte & PTE.PRESENT)) return undefined;
    return { linear: (linear & ~0xfff) >>> 0, physical: (pte & ~0xfff) >>> 0, entryAddr: pteAddr, entry: pte, size: PAGE_SIZE };
  }

  /**
   * Sets and clears bits of the entry that maps `linear` (the PTE, or the PDE of a
   * 4 MiB page) and returns the mapping as it was, or undefined if nothing maps it.
   * Removing rights (R/W, P, U/S) needs a TLB flush or INVLPG before the guest runs
   * again: WriteProtector does that; this does not.
   */
  updateEntry(linear: number, set: number, clear: number): Mapping | undefined {
    const map = this.translate(linear);
    if (!map) return undefined;
    this.m.ram32[map.entryAddr >>> 2] = ((map.entry | set) & ~clear) >>> 0;
    return map;
  }

  /** Frames holding the page directory and every present page table. */
  tableFrames(): number[] {
    const frames = [this.pd >>> 12];
    for (let i = 0; i < 1024; i++) {
      const pde = this.m.readU32(this.pd + i * 4);
      if ((pde & PTE.PRESENT) && !(pde & PTE.PAGE_SIZE)) frames.push(pde >>> 12);
    }
    return frames;
  }

  /** Every present mapping, in ascending linear order. */
  *mappings(): Generator<Mapping> {
    for (let i = 0; i < 1024; i++) {
      const pdeAddr = this.pd + i * 4;
      const pde = this.m.readU32(pdeAddr);
      if (!(pde & PTE.PRESENT)) continue;
      if (pde & PTE.PAGE_SIZE) {
        yield { linear: (i << 22) >>> 0, physical: (pde & 0xffc00000) >>> 0, entryAddr: pdeAddr, entry: pde, size: 4 << 20 };
        continue;
      }
      const pt = pde & ~0xfff;
      for (let j = 0; j < 1024; j++) {
        const pte = this.m.readU32(pt + j * 4);
        if (pte & PTE.PRESENT) yield { linear: ((i << 22) | (j << 12)) >>> 0, physical: (pte & ~0xfff) >>> 0, entryAddr: pt + j * 4, entry: pte, size: PAGE_SIZE };
      }
    }
  }
}
