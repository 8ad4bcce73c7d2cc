/**
 * Errors that end a run. Each carries the facts (what, where, the serial console
 * tail) so that a failing CI job says what happened without a rerun.
 */
import { HiberlabError } from '../errors.ts';
import { hex32 as hex } from '../units.ts';

/** Base class: the guest or the emulator can't go on. */
export class MachineError<Facts extends object = object> extends HiberlabError<string, Facts> {
  /** The last lines the guest printed on COM1. */
  consoleTail = '';
  constructor(message: string, code = 'MACHINE_ERROR', facts: Facts = {} as Facts, options?: { cause?: unknown }) {
    super(code, message, facts, options);
  }
  /** The message plus the console tail, for people. */
  describe(): string {
    return this.consoleTail ? `${this.message}\n--- guest console (last lines) ---\n${this.consoleTail}` : this.message;
  }
}

export interface ExceptionFacts {
  vector: number;
  errorCode: number;
  eip: number;
  cr2: number;
  cs: number;
  eflags: number;
  esp: number;
  taskId: number;
  registers: Record<string, number>;
}

const VECTOR_NAMES = [
  'divide error (#DE)', 'debug (#DB)', 'NMI', 'breakpoint (#BP)', 'overflow (#OF)', 'bound range (#BR)',
  'invalid opcode (#UD)', 'device not available (#NM)', 'double fault (#DF)', 'coprocessor segment overrun',
  'invalid TSS (#TS)', 'segment not present (#NP)', 'stack fault (#SS)', 'general protection (#GP)',
  'page fault (#PF)', 'reserved', 'x87 error (#MF)', 'alignment check (#AC)', 'machine check (#MC)', 'SIMD (#XM)',
];

export function vectorName(vector: number): string {
  return VECTOR_NAMES[vector] ?? `vector ${vector}`;
}

/** The guest took an exception it could not handle (reported by the EXCEPTION hypercall). */
export class GuestExceptionError extends MachineError<ExceptionFacts> {
  constructor(facts: ExceptionFacts) {
    super(
      `guest exception: ${vectorName(facts.vector)} ${facts.taskId === 0xffffffff ? 'outside any task (the suspend module)' : `in task ${facts.taskId}`} at EIP ${hex(facts.eip)}` +
        (facts.vector === 14 ? `, CR2 ${hex(facts.cr2)} (page ${hex(Math.floor(facts.cr2 / 4096))}), error code ${hex(facts.errorCode)} (${describePfError(facts.errorCode)})` : `, error code ${hex(facts.errorCode)}`),
      'GUEST_EXCEPTION',
      facts,
    );
  }
}

export function describePfError(code: number): string {
  return [
    code & 1 ? 'protection violation' : 'page not present',
    code & 2 ? 'write' : 'read',
    code & 4 ? 'user mode' : 'kernel mode',
    ...(code & 16 ? ['instruction fetch'] : []),
  ].join(', ');
}

/** The guest called panic(). */
export class GuestPanicError extends MachineError<{ panicMessage: string }> {
  constructor(readonly panicMessage: string) {
    super(`guest panic: ${panicMessage}`, 'GUEST_PANIC', { panicMessage });
  }
}

/** v86 itself gave up: a triple fault ("unreachable"), a runaway fault recursion, or an internal error. */
export class EmulatorDiedError extends MachineError<{ eip: number }> {
  constructor(override readonly cause: unknown, readonly eip: number) {
    super(`emulator died at EIP ${hex(eip)}: ${explainEmulatorDeath(cause)}`, 'EMULATOR_DIED', { eip }, { cause });
  }
}

function explainEmulatorDeath(cause: unknown): string {
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  if (/Maximum call stack/.test(text)) return `${text} (a fault while delivering a fault: v86 recurses instead of raising a double fault, e.g. a write-protected stack, IDT or page table)`;
  if (/unreachable/.test(text)) return `${text} (v86 panicked, most likely a triple fault)`;
  return text;
}

/** The guest did not get where it was expected to within the budget. */
export class GuestTimeoutError extends MachineError<{ waitingFor: string; budget: string }> {
  constructor(readonly waitingFor: string, readonly budget: string) {
    super(`guest did not reach ${waitingFor} within ${budget}`, 'GUEST_TIMEOUT', { waitingFor, budget });
  }
}

/** The guest stopped at a hypercall the harness did not expect at this point. */
export class ProtocolError extends MachineError {
  constructor(message: string) {
    super(message, 'PROTOCOL');
  }
}
