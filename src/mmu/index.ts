/** The MMU view: page-table walks, write protection, fault dispatch and fault policies. */
export { PageTableWalker, PTE, entryFlags, describeEntry, type Mapping, type EntryFlags } from './page-table.ts';
export { WriteProtector, ForbiddenPageError, ProtectError, type WriteProtectorOptions, type TlbStats, type PteLocation } from './protect.ts';
export {
  FaultHandler, FaultLoopError, FaultPolicyError, describeFault,
  type PageFault, type FaultDecision, type FaultPolicy, type FaultContext, type FaultTraceEvent, type FaultStats, type FaultHandlerOptions,
} from './faults.ts';
export * from './policies/index.ts';
export {
  runFaults, scopePfns, protectionCost, DEFAULT_FAULTS_WORKLOAD, DEFAULT_FAULTS_WARMUP_MS, DEFAULT_FAULTS_PRIME_MS, DEFAULT_FAULTS_DET_WARMUP_MS, PRIME_ROUND_MS,
  type FaultRunOptions, type FaultRunReport, type RunMeasure, type PrimeMeasure, type ProtectScope,
} from './fault-run.ts';
