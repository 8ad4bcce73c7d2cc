/**
 * hiberlab's library API. Start with `runCycle()`; go lower with `hibernate()` /
 * `resume()`, `Guest` (a booted guest kernel and its power-management protocol) and
 * `Machine` (one v86 instance, hypercalls, memory, registers). A new algorithm is a
 * `SaveStrategy` (defineSaveStrategy, on a SaveSession) or a `RestoreStrategy`
 * (defineRestoreStrategy, with the shared parts), registered with
 * registerSaveStrategy / registerRestoreStrategy (docs/ADDING-A-STRATEGY.md). Write
 * protection: `WriteProtector`, `FaultHandler` and the fault policies; `runFaults()`
 * runs a workload under protection (`hiberlab faults`).
 */
export {
  runCycle, runLineage, hibernate, resume, swapBytesFor,
  DEFAULT_RAM_BYTES, DEFAULT_WORKLOAD, DEFAULT_WARMUP_MS,
  type CycleReport, type FrameMap, type CycleOptions, type HibernateOptions, type HibernateResult, type ResumeOptions, type ResumeResult, type ResumeStatus, type MachineChoice,
} from './cycle.ts';
export { HiberlabError, errorCode } from './errors.ts';
export { PAGE_SIZE, hex, hex32 } from './units.ts';
export { Guest, type GuestOptions, type VerifyReport, type ResumeDecision } from './machine/guest.ts';
export { Machine, MIN_RAM_BYTES, MAX_RAM_BYTES, type MachineOptions, type Hypercall, type HypercallResult, type TraceEvent, type PageFaultHook } from './machine/machine.ts';
export { chooseWasmTiers, jitModuleCounts, wasmTiers, type WasmTiers } from './machine/v86.ts';
export { GuestAllocator } from './machine/allocator.ts';
export { adviseHugePages, hugePageMemory, transparentHugePageMode, type HugePageAdvice } from './machine/host-memory.ts';
export { loadGuestImage, kernelImage, checkGuestImageFresh } from './machine/guest-image.ts';
export { parseWorkloadSpec, parseSize, type WorkloadSpec } from './machine/workload.ts';
export * from './machine/errors.ts';
export {
  SAVE_STRATEGIES, RESTORE_STRATEGIES, saveStrategy, restoreStrategy, registerSaveStrategy, registerRestoreStrategy, unregisterStrategy, UnknownStrategyError,
} from './strategies.ts';
export {
  declareOptions, declareStats, resolveOptions, BadOptionError,
  type OptionSpec, type OptionSpecs, type OptionValues, type GivenOptions, type StatSpec, type StatSpecs, type StatValue, type StatValues, type PrecopyRound,
} from './declarations.ts';
export { defineSaveStrategy, HibernationRefusedError, type SaveStrategy, type SaveOutcome, type SaveReport, type ImageStream } from './save/strategy.ts';
export { SaveSession, runSave, type SaveContext, type SaveResult } from './save/session.ts';
export { PageSetBits, fixPageSet, saveablePfns, saveableWords } from './save/common.ts';
export { defineRestoreStrategy, RestoreRefusedError, type RestoreStrategy, type RestoreContext, type RestoreLoad, type RestoreReport } from './restore/strategy.ts';
export { runRestore } from './restore/run.ts';
export { swsusp } from './save/swsusp.ts';
export { wpFull } from './save/wp-full.ts';
export { cow } from './save/cow.ts';
export { twoPageset } from './save/two-pageset.ts';
export { suspendModule } from './save/suspend-module.ts';
export { bitmapPbe } from './restore/bitmap-pbe.ts';
export { eatUnsafe, planEating } from './restore/eat-unsafe.ts';
export { oneShot } from './restore/one-shot.ts';
export { reserved } from './restore/reserved.ts';
export { compareOnLoad } from './restore/compare-on-load.ts';
export * as restoreParts from './restore/parts.ts';
export { Oracle, OracleWatch, type OracleCapture, type FrameRef, type Derivation } from './oracle/oracle.ts';
export { Verifier, judge, checkImagePages, type OracleVerdict, type FrameCheck, type MemoryCheck, type CpuCheck, type TaskCheck, type PageDifference } from './oracle/verdict.ts';
export { CPU_FIELDS, cpuContextNow, type CpuContext, type CpuDifference } from './oracle/context.ts';
export { MemoryBitmap, bitmapPages } from './pages/memory-bitmap.ts';
export { countBits, framesOfWords, wordsOfFrames, runsOfWords, forEachRun, forEachRunPair } from './pages/page-set.ts';
export { SwapDevice, ImageWriter, ImageReader, validateImage, inspectImage, resetSignature, ImageError, CrcThread, crc32, crc32Pages, type ValidatedImage } from './image/index.ts';
export * from './mmu/index.ts';
export * as abi from './abi.ts';
