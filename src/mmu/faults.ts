/**
 * The TypeScript side of the guest's #PF: dispatch to a policy.
 *
 * The guest's #PF stub (guest/vectors.S) forwards (error code, faulting EIP) by
 * `out` to PORTS.PAGE_FAULT; Machine reads CR2 from the CPU and calls the installed
 * hook synchronously inside that `out`, with the guest's CPU in the middle of the stub (interrupts off, the
 * fault frame on the current task's stack). FaultHandler is that hook:
 *
 *   - a write fault on a present page that the WriteProtector protected is *ours*:
 *     the policy decides — 'retry' (it made the page writable: the stub irets and the
 *     access runs again), 'not-mine' (the guest's own handling), or `{ stop: error }`
 *     (the run ends: Machine.abort(error), and the pending `run()` throws it);
 *   - everything else (a non-present page, a read fault, a write to a page we did not
 *     protect: a real guest bug) is 'not-mine' and goes to the guest's own handling,
 *     which reports EXCEPTION and halts, so `run()` throws GuestExceptionError. A fault
 *     is never swallowed.
 *
 * A policy that says 'retry' but leaves the page protected would make the guest fault
 * forever on the same access; the handler stops the run with a FaultLoopError instead.
 * A policy that throws ends the run with that error.
 */
import { CONSTANTS, STRUCTS } from '../abi.ts';
import { MachineError } from '../machine/errors.ts';
import type { Guest } from '../machine/guest.ts';
import type { Machine, PageFaultHook } from '../machine/machine.ts';
import { PTE } from './page-table.ts';
import type { WriteProtector } from './protect.ts';
import { hex, hex32 } from '../units.ts';

/** One page fault as the handler saw it. */
export interface PageFault {
  /** The #PF error code (bit 0 present, bit 1 write, bit 2 user, bit 4 fetch). */
  readonly errorCode: number;
  /** The faulting linear address. */
  readonly cr2: number;
  /** EIP of the faulting instruction (it runs again on 'retry'). */
  readonly eip: number;
  /** The frame CR2 maps to, or -1 if it is not mapped. */
  readonly pfn: number;
  readonly write: boolean;
  /** The page was present (a protection fault, not a missing page). */
  readonly present: boolean;
  /** The entry that maps CR2 at the time of the fault (a PDE for a 4 MiB page), 0 if none. */
  readonly pte: number;
  /** Physical address of that entry, 0 if none. */
  readonly pteAddr: number;
  /** Why the protector protected the page (undefined: it did not). */
  readonly reason: string | undefined;
  /** The task that made the access (the guest's `current`), -1 if unknown. */
  readonly taskId: number;
  /** 0, 1, 2, … in the order the handler saw faults. */
  readonly seq: number;
}

/** What a policy answers: retry the access, leave it to the guest, or end the run. */
export type FaultDecision = 'retry' | 'not-mine' | { stop: Error };

export interface FaultContext {
  readonly protector: WriteProtector;
  readonly guest: Guest;
  readonly machine: Machine;
}

/** A fault policy: one small module per behaviour (src/mmu/policies/). */
export interface FaultPolicy {
  readonly name: string;
  /** Called for every write fault on a page the protector protected. Runs inside the guest's `out`: be quick. */
  onFault(fault: PageFault, ctx: FaultContext): FaultDecision;
  /** Forgets per-round state before pages are protected again (optional). */
  clear?(): void;
  /** Gives the policy's guest frames back to the allocator (optional). */
  dispose?(): void;
}

/** One line of a fault trace. */
export interface FaultTraceEvent {
  readonly seq: number;
  /** Guest clock in ms (virtual in deterministic mode: identical in identical runs). */
  readonly timeMs: number;
  /** Guest instructions retired (exact in deterministic mode). */
  readonly instructions: number;
  readonly pfn: number;
  readonly eip: number;
  readonly cr2: number;
  readonly errorCode: number;
  readonly taskId: number;
  readonly decision: 'retry' | 'not-mine' | 'stop';
}

export interface FaultStats {
  /** Every #PF the guest forwarded while the handler was installed. */
  faults: number;
  /** Faults the policy answered with 'retry'. */
  handled: number;
  /** Faults left to the guest (not ours, or the policy declined). */
  notMine: number;
  /** Faults that ended the run. */
  stopped: number;
  /** Pages with at least one fault on a protected page. */
  readonly pagesFaulted: number;
  /**
   * Faults per PFN (faults on protected pages), ascending by PFN. Built from a counter
   * array on every read (the hot path keeps no Map): read it once, not per fault.
   */
  readonly perPage: Map<number, number>;
  /** Faults on protected pages for one PFN. */
  faultsOn(pfn: number): number;
}

/** The handler's counters: a typed array per frame on the hot path, a Map for readers. */
class Counters implements FaultStats {
  faults = 0;
  handled = 0;
  notMine = 0;
  stopped = 0;
  pagesFaulted = 0;
  private readonly counts: Uint32Array;

  constructor(frameCount: number) {
    this.counts = new Uint32Array(frameCount);
  }

  /** Hot path. */
  count(pfn: number): void {
    if (this.counts[pfn]!++ === 0) this.pagesFaulted++;
  }

  faultsOn(pfn: number): number {
    return this.counts[pfn] ?? 0;
  }

  get perPage(): Map<number, number> {
    const out = new Map<number, number>();
    if (this.pagesFaulted === 0) return out;
    const c = this.counts;
    for (let pfn = 0; pfn < c.length; pfn++) if (c[pfn]) out.set(pfn, c[pfn]!);
    return out;
  }

  toJSON(): object {
    return { faults: this.faults, handled: this.handled, notMine: this.notMine, stopped: this.stopped, pagesFaulted: this.pagesFaulted };
  }
}

export interface FaultHandlerOptions {
  /** Keep every fault in `trace`. Default false. */
  readonly trace?: boolean;
  /** Called with every fault (also without `trace`). */
  readonly onTrace?: (event: FaultTraceEvent) => void;
}

/** A policy said 'retry' but left the page protected: the access would fault forever. */
export class FaultLoopError extends MachineError<{ policy: string; pfn: number; eip: number }> {
  constructor(readonly policy: string, readonly fault: PageFault) {
    super(`fault policy ${policy} answered 'retry' for PFN ${hex(fault.pfn)} at EIP ${hex32(fault.eip)} but left the page write-protected: the write would fault forever`, 'FAULT_LOOP', { policy, pfn: fault.pfn, eip: fault.eip });
  }
}

/** A fault policy threw: the run ends with this error (the policy's error is the cause). */
export class FaultPolicyError extends MachineError<{ policy: string; pfn: number; eip: number }> {
  constructor(readonly policy: string, readonly fault: PageFault, override readonly cause: unknown) {
    super(`fault policy ${policy} failed on the write to PFN ${hex(fault.pfn)} at EIP ${hex32(fault.eip)}: ${cause instanceof Error ? cause.message : String(cause)}`, 'FAULT_POLICY_FAILED', { policy, pfn: fault.pfn, eip: fault.eip }, { cause });
  }
}

const TASK_STRUCT_BYTES = STRUCTS.task_struct.size;

/** "PFN 0x139 (address 0x00139000, protected as X) at EIP 0x00101d55 by task 1 (pm)": who wrote where. */
export function describeFault(fault: PageFault, guest: Guest): string {
  const task = guest.tasks().find((t) => t.id === fault.taskId);
  const who = fault.taskId < 0 ? 'before the scheduler started' : `by task ${fault.taskId}${task ? ` (${task.name})` : ''}`;
  return `PFN ${hex(fault.pfn)} (address ${hex32(fault.cr2)}${fault.reason ? `, protected as "${fault.reason}"` : ''}) at EIP ${hex32(fault.eip)} ${who}`;
}

export class FaultHandler {
  readonly stats: FaultStats;
  private readonly counters: Counters;
  /** Every fault, when the `trace` option is on. */
  readonly trace?: FaultTraceEvent[];
  readonly machine: Machine;
  private readonly ctx: FaultContext;
  private readonly onTrace?: (event: FaultTraceEvent) => void;
  private installed = false;
  private previous: PageFaultHook | undefined;
  /** u32 index of the guest's `current` pointer, and the task table's address. */
  private readonly currentWord: number;
  private readonly taskTable: number;
  private readonly hook: PageFaultHook = (errorCode, cr2, eip) => this.handle(errorCode >>> 0, cr2 >>> 0, eip >>> 0);

  constructor(readonly guest: Guest, readonly protector: WriteProtector, readonly policy: FaultPolicy, options: FaultHandlerOptions = {}) {
    this.machine = guest.machine;
    this.stats = this.counters = new Counters(protector.frameCount);
    this.ctx = { protector, guest, machine: guest.machine };
    this.currentWord = guest.bootInfo.current_task >>> 2;
    this.taskTable = guest.bootInfo.task_table;
    if (options.trace) this.trace = [];
    this.onTrace = options.onTrace;
  }

  /** Becomes the machine's page-fault hook (remembering the one it replaces). */
  install(): this {
    if (!this.installed) {
      this.previous = this.machine.setPageFaultHandler(this.hook);
      this.installed = true;
    }
    return this;
  }

  /** Puts back the hook that was there before. Protected pages stay protected: unprotect them first if the guest runs on. */
  uninstall(): void {
    if (!this.installed) return;
    this.machine.setPageFaultHandler(this.previous);
    this.previous = undefined;
    this.installed = false;
  }

  get isInstalled(): boolean {
    return this.installed;
  }

  private handle(errorCode: number, cr2: number, eip: number): number {
    const m = this.machine;
    const stats = this.counters;
    const seq = stats.faults++;
    const present = (errorCode & 1) !== 0;
    const write = (errorCode & 2) !== 0;
    // Walk CR3 → PDE → PTE for CR2.
    const ram32 = m.ram32;
    const pdeAddr = ((m.cr(3) & ~0xfff) >>> 0) + ((cr2 >>> 22) << 2);
    const pde = ram32[pdeAddr >>> 2]!;
    let pfn = -1;
    let pte = 0;
    let pteAddr = 0;
    if (pde & PTE.PRESENT) {
      if (pde & PTE.PAGE_SIZE) {
        pfn = ((pde & 0xffc00000) >>> 12) + ((cr2 >>> 12) & 0x3ff);
        pte = pde;
        pteAddr = pdeAddr;
      } else {
        pteAddr = ((pde & ~0xfff) >>> 0) + (((cr2 >>> 12) & 0x3ff) << 2);
        pte = ram32[pteAddr >>> 2]!;
        if (pte & PTE.PRESENT) pfn = pte >>> 12;
      }
    }
    let decision: FaultDecision = 'not-mine';
    let fault: PageFault | undefined;
    if (write && present && pfn >= 0 && this.protector.isProtected(pfn)) {
      fault = { errorCode, cr2, eip, pfn, write, present, pte, pteAddr, reason: this.protector.reason(pfn), taskId: this.taskId(ram32), seq };
      stats.count(pfn);
      try {
        decision = this.policy.onFault(fault, this.ctx);
      } catch (err) {
        decision = { stop: new FaultPolicyError(this.policy.name, fault, err) };
      }
      if (decision === 'retry' && !(m.ram32[pteAddr >>> 2]! & PTE.WRITABLE)) {
        decision = { stop: new FaultLoopError(this.policy.name, fault) };
      }
    }
    let result: number;
    let kind: FaultTraceEvent['decision'];
    if (decision === 'retry') {
      stats.handled++;
      result = CONSTANTS.PF_HANDLED.value;
      kind = 'retry';
    } else if (decision === 'not-mine') {
      stats.notMine++;
      result = CONSTANTS.PF_NOT_MINE.value;
      kind = 'not-mine';
    } else {
      stats.stopped++;
      m.abort(decision.stop);
      result = CONSTANTS.PF_NOT_MINE.value;
      kind = 'stop';
    }
    if (this.trace || this.onTrace) {
      const event: FaultTraceEvent = {
        seq, timeMs: m.guestTimeMs(), instructions: m.instructionsNow(), pfn, eip, cr2, errorCode,
        taskId: fault ? fault.taskId : this.taskId(m.ram32), decision: kind,
      };
      this.trace?.push(event);
      this.onTrace?.(event);
    }
    return result;
  }

  /** Guest.currentTaskId() without its range checks (hot path). */
  private taskId(ram32: Uint32Array): number {
    const ptr = ram32[this.currentWord]!;
    return ptr ? Math.floor((ptr - this.taskTable) / TASK_STRUCT_BYTES) : -1;
  }
}
