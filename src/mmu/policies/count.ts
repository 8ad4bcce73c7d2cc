/** count: record the fault, unprotect the page, retry (what a bare handler costs). */
import type { FaultContext, FaultDecision, FaultPolicy, PageFault } from '../faults.ts';

export class CountPolicy implements FaultPolicy {
  readonly name = 'count';
  /** Faults seen. */
  faults = 0;
  /** The last faulting PFN (-1 before the first fault). Per-page counts are in FaultHandler.stats. */
  lastPfn = -1;

  onFault(fault: PageFault, ctx: FaultContext): FaultDecision {
    this.faults++;
    this.lastPfn = fault.pfn;
    ctx.protector.unprotectOne(fault.pfn);
    return 'retry';
  }
}
