/**
 * What every restore strategy gets and gives. A strategy runs in the boot kernel,
 * stopped at RESUME_CHECK, with an image that has already been validated completely
 * (signature, header, metadata, every page checksum, build id, RAM size). It must
 * decide whether the image fits before it writes a single guest byte; once it writes,
 * it loads everything and hands the guest a trampoline, a PBE list and the context.
 */
import type { ValidatedImage, SwapDevice } from '../image/index.ts';
import type { ResumeDecision } from '../machine/guest.ts';
import type { Guest } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import { HiberlabError } from '../errors.ts';

export interface RestoreContext {
  readonly guest: Guest;
  readonly swap: SwapDevice;
  readonly image: ValidatedImage;
  readonly progress: Progress;
}

export interface RestoreReport {
  readonly strategy: string;
  readonly pagesLoaded: number;
  /** Pages loaded straight into their original frame (free in the boot kernel). */
  readonly inPlacePages: number;
  /** Pages loaded into safe pages and copied by the trampoline (one PBE each). */
  readonly pbes: number;
  /** Frames the restore took from the boot kernel's allocator (safe pages, PBE pages, bitmaps, trampoline). */
  readonly snapshotFrames: number;
  readonly phasesMs: Readonly<Record<string, number>>;
}

export interface RestorePlan {
  readonly decision: Extract<ResumeDecision, { resume: true }>;
  readonly report: RestoreReport;
}

export interface RestoreStrategy {
  readonly name: string;
  readonly description: string;
  prepare(ctx: RestoreContext): Promise<RestorePlan>;
}

/** The restore cannot proceed; nothing in guest memory was touched. */
export class RestoreRefusedError extends HiberlabError<'RESTORE_REFUSED', Record<string, number>> {
  constructor(message: string, facts: Record<string, number> = {}) {
    super('RESTORE_REFUSED', message, facts);
  }
}
