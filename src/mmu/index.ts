/** The MMU view: page-table walks, write protection, fault dispatch and fault policies. */
export { PageTableWalker, PTE, entryFlags, describeEntry, type Mapping, type EntryFlags } from './page-table.ts';
export { WriteProtector, ForbiddenPageError, ProtectError, type WriteProtectorOptions, type TlbStats, type PteLocation } from './protect.ts';
export {
  FaultHandler, FaultLoopError, FaultPolicyError, describeFault,
  type PageFault, type FaultDecision, type FaultPolicy, type FaultContext, type FaultTraceEvent, type FaultStats, type FaultHandlerOptions,
} from './faults.ts';
export * from './policies/index.ts';
export { runFaults, scopePfns, DEFAULT_FAULTS_WORKLOAD, type FaultRunOptions, type FaultRunReport, type RunMeasure, type ProtectScope } from './fault-run.ts';
