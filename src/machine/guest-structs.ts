/**
 * Reading the guest's structures out of its RAM, by the layouts in src/abi.ts.
 * Nothing here knows an offset by heart: every field is looked up in the ABI table.
 */
import { CONSTANTS, STRUCTS, TASK_KINDS, TASK_STATES, type StructName } from '../abi.ts';
import type { ExceptionFacts } from './errors.ts';
import { HiberlabError } from '../errors.ts';
import { hex } from '../units.ts';

/** The little the readers need from a machine: u32 loads from guest physical memory. */
export interface GuestMemoryReader {
  readU32(addr: number): number;
  readString(addr: number, maxLen: number): string;
}

export type StructValues<N extends StructName> = { [K in (typeof STRUCTS)[N]['fields'][number]['name']]: number };

/** Reads every u32 field of a structure at `addr` (byte-array fields are skipped). */
export function readStruct<N extends StructName>(mem: GuestMemoryReader, name: N, addr: number): StructValues<N> {
  const out: Record<string, number> = {};
  for (const f of STRUCTS[name].fields) if (f.size === 4) out[f.name] = mem.readU32(addr + f.offset);
  return out as StructValues<N>;
}

export function fieldAddr(name: StructName, addr: number, field: string): number {
  const f = STRUCTS[name].fields.find((x) => x.name === field);
  if (!f) throw new Error(`abi: ${name} has no field ${field}`);
  return addr + f.offset;
}

export type BootInfo = StructValues<'boot_info'> & { readonly address: number; readonly cmdlineText: string; readonly largePages: boolean };

export class BootInfoError extends HiberlabError<'BAD_BOOT_INFO', Record<string, never>> {
  constructor(message: string) {
    super('BAD_BOOT_INFO', message, {});
  }
}

/** Parses and sanity-checks the boot info the guest reported with BOOT_INFO. */
export function readBootInfo(mem: GuestMemoryReader, addr: number, abiVersion: number): BootInfo {
  const bi = readStruct(mem, 'boot_info', addr);
  if (bi.magic !== CONSTANTS.BOOT_INFO_MAGIC.value) {
    throw new BootInfoError(`boot info at ${hex(addr)} has magic ${hex(bi.magic)}, expected ${hex(CONSTANTS.BOOT_INFO_MAGIC.value)}`);
  }
  if (bi.abi_version !== abiVersion) {
    throw new BootInfoError(`guest was built for ABI version ${bi.abi_version}, the harness speaks ${abiVersion}: rebuild the guest (npm run build:guest)`);
  }
  return {
    ...bi,
    address: addr,
    cmdlineText: bi.cmdline ? mem.readString(bi.cmdline, 4096) : '',
    largePages: (bi.flags & CONSTANTS.BOOT_FLAG_LARGE_PAGES.value) !== 0,
  };
}

export interface TaskInfo {
  id: number;
  name: string;
  state: string;
  kind: string;
  freezable: boolean;
  /** Asleep at a safe point: the freezer freezes it where it sleeps. */
  safeSleep: boolean;
  stackBase: number;
  stackBytes: number;
  bufBase: number;
  bufBytes: number;
  /** Times the CPU was switched to it. */
  switches: number;
}

function nameOf(table: Record<string, { value: number }>, v: number): string {
  for (const [k, e] of Object.entries(table)) if (e.value === v) return k.toLowerCase();
  return `unknown(${v})`;
}

/** The task table as the guest holds it (slots in use only). */
export function readTasks(mem: GuestMemoryReader, bi: BootInfo): TaskInfo[] {
  const size = STRUCTS.task_struct.size;
  const nameField = STRUCTS.task_struct.fields.find((f) => f.name === 'name')!;
  const tasks: TaskInfo[] = [];
  const count = mem.readU32(fieldAddr('boot_info', bi.address, 'task_count'));
  for (let i = 0; i < Math.min(count, CONSTANTS.MAX_TASKS.value); i++) {
    const addr = bi.task_table + i * size;
    const t = readStruct(mem, 'task_struct', addr);
    if (t.state === TASK_STATES.UNUSED.value) continue;
    tasks.push({
      id: t.id,
      name: mem.readString(addr + nameField.offset, nameField.size),
      state: nameOf(TASK_STATES, t.state),
      kind: nameOf(TASK_KINDS, t.kind),
      freezable: t.freezable !== 0,
      safeSleep: t.safe_sleep !== 0,
      stackBase: t.stack_base,
      stackBytes: t.stack_bytes,
      bufBase: t.buf_base,
      bufBytes: t.buf_bytes,
      switches: t.switches,
    });
  }
  return tasks;
}

export function readExceptionFrame(mem: GuestMemoryReader, addr: number): ExceptionFacts {
  const f = readStruct(mem, 'exception_frame', addr);
  return {
    vector: f.vector,
    errorCode: f.error_code,
    eip: f.eip,
    cr2: f.cr2,
    cs: f.cs,
    eflags: f.eflags,
    esp: f.esp,
    taskId: f.task_id,
    registers: { eax: f.eax, ebx: f.ebx, ecx: f.ecx, edx: f.edx, esi: f.esi, edi: f.edi, ebp: f.ebp },
  };
}
