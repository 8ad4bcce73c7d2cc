/**
 * The saved CPU context as the oracle sees it: read from the CPU itself, at the ATOMIC
 * hypercall (the atomic point) and again at RESUME_POINT (the instant the trampoline has
 * handed control back, before the resumed kernel re-initialises anything). The guest
 * makes both hypercalls with only EAX and EDX changed (docs/GUEST.md), so every register
 * swsusp_arch_suspend's caller can rely on must be equal at the two instants.
 *
 * Not compared: EAX, ECX and EDX, which the C calling convention lets a call clobber
 * (EAX is the return value: 0 on the suspend path, 1 on the resume path), and EIP, which
 * is at the hypercall of each path; the return address (the word at ESP) stands for it.
 */
import { STRUCTS } from '../abi.ts';
import type { Machine } from '../machine/machine.ts';
import { hex32 } from '../units.ts';

export interface CpuContext {
  readonly ebx: number;
  readonly esi: number;
  readonly edi: number;
  readonly ebp: number;
  readonly esp: number;
  readonly eflags: number;
  /** Where swsusp_arch_suspend returns to: the word at ESP. */
  readonly returnEip: number;
  readonly cs: number;
  readonly ds: number;
  readonly es: number;
  readonly fs: number;
  readonly gs: number;
  readonly ss: number;
  readonly tr: number;
  readonly cr0: number;
  readonly cr2: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly gdtBase: number;
  readonly gdtLimit: number;
  readonly idtBase: number;
  readonly idtLimit: number;
}

export type CpuField = keyof CpuContext;

/** Every field of the saved context, in the order reports list them. */
export const CPU_FIELDS: readonly CpuField[] = [
  'ebx', 'esi', 'edi', 'ebp', 'esp', 'eflags', 'returnEip', 'cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr',
  'cr0', 'cr2', 'cr3', 'cr4', 'gdtBase', 'gdtLimit', 'idtBase', 'idtLimit',
];

export interface CpuDifference {
  readonly field: CpuField;
  /** At the atomic point (or in the image's saved context). */
  readonly expected: number;
  /** When control came back. */
  readonly actual: number;
}

/** The context as the CPU holds it now (the guest stopped at ATOMIC or RESUME_POINT). */
export function cpuContextNow(m: Machine): CpuContext {
  const dt = m.descriptorTables();
  const esp = m.reg('esp');
  return {
    ebx: m.reg('ebx'), esi: m.reg('esi'), edi: m.reg('edi'), ebp: m.reg('ebp'), esp,
    eflags: m.eflags,
    returnEip: m.readU32(esp),
    cs: m.sreg('cs'), ds: m.sreg('ds'), es: m.sreg('es'), fs: m.sreg('fs'), gs: m.sreg('gs'), ss: m.sreg('ss'), tr: m.sreg('tr'),
    cr0: m.cr(0), cr2: m.cr(2), cr3: m.cr(3), cr4: m.cr(4),
    gdtBase: dt.gdtBase, gdtLimit: dt.gdtLimit, idtBase: dt.idtBase, idtLimit: dt.idtLimit,
  };
}

/**
 * The context an image's header carries (the guest's struct saved_context, copied at the
 * atomic point): what the resume compares with when there is no oracle. It has no return
 * address (that is in the saved stack page); `returnEip` is undefined.
 */
export function cpuContextOfSavedContext(bytes: Uint8Array): Omit<CpuContext, 'returnEip'> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = (name: string) => view.getUint32(STRUCTS.saved_context.fields.find((x) => x.name === name)!.offset, true);
  return {
    ebx: f('ebx'), esi: f('esi'), edi: f('edi'), ebp: f('ebp'), esp: f('esp'), eflags: f('eflags'),
    cs: f('cs'), ds: f('ds'), es: f('es'), fs: f('fs'), gs: f('gs'), ss: f('ss'), tr: f('tr'),
    cr0: f('cr0'), cr2: f('cr2'), cr3: f('cr3'), cr4: f('cr4'),
    gdtBase: f('gdtr_base'), gdtLimit: f('gdtr_limit') & 0xffff, idtBase: f('idtr_base'), idtLimit: f('idtr_limit') & 0xffff,
  };
}

/** The fields of `expected` that `actual` does not match. */
export function compareContexts(expected: Partial<CpuContext>, actual: CpuContext): CpuDifference[] {
  const out: CpuDifference[] = [];
  for (const field of CPU_FIELDS) {
    const want = expected[field];
    if (want === undefined) continue;
    if (want >>> 0 !== actual[field] >>> 0) out.push({ field, expected: want >>> 0, actual: actual[field] >>> 0 });
  }
  return out;
}

/** "eflags: 0x00040046 at the atomic point, 0x00000046 when control came back". */
export function describeCpuDifference(d: CpuDifference, against: 'oracle' | 'image'): string {
  return `${d.field}: ${hex32(d.expected)} ${against === 'oracle' ? 'at the atomic point' : 'in the image'}, ${hex32(d.actual)} when control came back`;
}
