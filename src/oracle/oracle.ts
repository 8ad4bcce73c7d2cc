/**
 * The oracle: the exact machine state at the atomic point, which only an emulator
 * can give. A cycle passes only if every saved page equals it byte for byte after the
 * restore (and the guest's own workloads verify their data).
 */
import { ownerName } from '../abi.ts';
import type { BootInfo } from '../machine/guest-structs.ts';
import type { Machine } from '../machine/machine.ts';
import { hex } from '../units.ts';
import { PAGE_SIZE } from '../units.ts';

export interface CpuContext {
  eip: number;
  eflags: number;
  cr0: number;
  cr3: number;
  cr4: number;
  gdtBase: number;
  gdtLimit: number;
  idtBase: number;
  idtLimit: number;
  cs: number;
  ds: number;
  ss: number;
  registers: Record<'eax' | 'ebx' | 'ecx' | 'edx' | 'esi' | 'edi' | 'ebp' | 'esp', number>;
}

export interface Oracle {
  /** A copy of all of RAM at the atomic point. */
  readonly ram: Uint8Array;
  readonly cpu: CpuContext;
  /** Guest instructions retired at the atomic point. */
  readonly instructions: number;
  readonly ownerMapAddr: number;
  readonly frameCount: number;
}

export interface PageDifference {
  pfn: number;
  owner: string;
  /** First differing byte within the page. */
  offset: number;
  expected: number;
  actual: number;
}

export interface OracleVerdict {
  pagesCompared: number;
  differingPages: PageDifference[];
}

export function captureCpu(m: Machine): CpuContext {
  const dt = m.descriptorTables();
  return {
    eip: m.eip,
    eflags: m.eflags,
    cr0: m.cr(0),
    cr3: m.cr(3),
    cr4: m.cr(4),
    ...dt,
    cs: m.sreg('cs'),
    ds: m.sreg('ds'),
    ss: m.sreg('ss'),
    registers: {
      eax: m.reg('eax'), ebx: m.reg('ebx'), ecx: m.reg('ecx'), edx: m.reg('edx'),
      esi: m.reg('esi'), edi: m.reg('edi'), ebp: m.reg('ebp'), esp: m.reg('esp'),
    },
  };
}

/** Records RAM and CPU state now (the guest must be stopped at the atomic point). */
export function captureOracle(m: Machine, bootInfo: BootInfo, ownerMapAddr: number): Oracle {
  return {
    ram: m.ram.slice(),
    cpu: captureCpu(m),
    instructions: m.instructions,
    ownerMapAddr,
    frameCount: bootInfo.frame_count,
  };
}

/** Owner of a frame at the atomic point, by the guest's own owner map. */
export function oracleOwner(oracle: Oracle, pfn: number): string {
  return ownerName(oracle.ram[oracle.ownerMapAddr + pfn]!);
}

/** Compares the listed frames of current RAM with the oracle, byte for byte. */
export function comparePages(m: Machine, oracle: Oracle, pfns: ArrayLike<number>): OracleVerdict {
  const ram = Buffer.from(m.ram.buffer, m.ram.byteOffset, m.ram.byteLength);
  const want = Buffer.from(oracle.ram.buffer, oracle.ram.byteOffset, oracle.ram.byteLength);
  const differingPages: PageDifference[] = [];
  for (let i = 0; i < pfns.length; i++) {
    const start = pfns[i]! * PAGE_SIZE;
    if (ram.compare(want, start, start + PAGE_SIZE, start, start + PAGE_SIZE) !== 0) {
      let off = 0;
      while (off < PAGE_SIZE && ram[start + off] === want[start + off]) off++;
      differingPages.push({ pfn: pfns[i]!, owner: oracleOwner(oracle, pfns[i]!), offset: off, expected: want[start + off]!, actual: ram[start + off]! });
    }
  }
  return { pagesCompared: pfns.length, differingPages };
}

/** Differences between the CPU context the guest resumed with and the oracle's (fields that must survive). */
export function compareCpu(resumed: CpuContext, oracle: CpuContext): string[] {
  const out: string[] = [];
  const keys = ['cr0', 'cr3', 'cr4', 'gdtBase', 'gdtLimit', 'idtBase', 'idtLimit', 'cs', 'ds', 'ss'] as const;
  for (const k of keys) {
    if (resumed[k] !== oracle[k]) out.push(`${k}: resumed ${hex(resumed[k])}, at the atomic point ${hex(oracle[k])}`);
  }
  return out;
}
