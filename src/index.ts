/**
 * hiberlab's library API. Start with `runCycle()`; go lower with `hibernate()` /
 * `resume()`, `Guest` (a booted guest kernel and its power-management protocol) and
 * `Machine` (one v86 instance, hypercalls, memory, registers). Write protection:
 * `WriteProtector`, `FaultHandler` and the fault policies; `runFaults()` runs a
 * workload under protection (`hiberlab faults`).
 */
export {
  runCycle, runLineage, hibernate, resume, judge, swapBytesFor,
  DEFAULT_RAM_BYTES, DEFAULT_WORKLOAD, DEFAULT_WARMUP_MS,
  type CycleReport, type CycleOptions, type HibernateOptions, type HibernateResult, type ResumeOptions, type ResumeResult, type ResumeStatus, type MachineChoice,
} from './cycle.ts';
export { Guest, type GuestOptions, type VerifyReport, type ResumeDecision } from './machine/guest.ts';
export { Machine, MIN_RAM_BYTES, MAX_RAM_BYTES, type MachineOptions, type Hypercall, type HypercallResult, type TraceEvent, type PageFaultHook } from './machine/machine.ts';
export { GuestAllocator } from './machine/allocator.ts';
export { adviseHugePages, hugePageMemory, transparentHugePageMode, type HugePageAdvice } from './machine/host-memory.ts';
export { loadGuestImage, checkGuestImageFresh } from './machine/guest-image.ts';
export { parseWorkloadSpec, parseSize, type WorkloadSpec } from './machine/workload.ts';
export * from './machine/errors.ts';
export { SAVE_STRATEGIES, RESTORE_STRATEGIES, saveStrategy, restoreStrategy } from './strategies.ts';
export { HibernationRefusedError, type SaveStrategy, type SaveContext, type SaveReport } from './save/strategy.ts';
export { RestoreRefusedError, type RestoreStrategy, type RestoreContext, type RestoreReport } from './restore/strategy.ts';
export { captureOracle, comparePages, type Oracle, type PageDifference } from './oracle/oracle.ts';
export { SwapDevice, ImageWriter, ImageReader, validateImage, inspectImage, resetSignature, ImageError, CrcThread, crc32, crc32Pages, type ValidatedImage } from './image/index.ts';
export * from './mmu/index.ts';
export * as abi from './abi.ts';
