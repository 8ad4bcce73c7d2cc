/**
 * deny: a write to a protected page is a bug. The run stops with a WriteDeniedError
 * naming the page, the EIP and the task that wrote (the guest's `current`).
 */
import { MachineError } from '../../machine/errors.ts';
import { describeFault, type FaultContext, type FaultDecision, type FaultPolicy, type PageFault } from '../faults.ts';

export class WriteDeniedError extends MachineError<{ pfn: number; eip: number; taskId: number }> {
  readonly pfn: number;
  readonly eip: number;
  readonly taskId: number;
  constructor(readonly fault: PageFault, where: string) {
    super(`denied write to a protected page: ${where}`, 'WRITE_DENIED', { pfn: fault.pfn, eip: fault.eip, taskId: fault.taskId });
    this.pfn = fault.pfn;
    this.eip = fault.eip;
    this.taskId = fault.taskId;
  }
}

export class DenyPolicy implements FaultPolicy {
  readonly name = 'deny';

  onFault(fault: PageFault, ctx: FaultContext): FaultDecision {
    return { stop: new WriteDeniedError(fault, describeFault(fault, ctx.guest)) };
  }
}
