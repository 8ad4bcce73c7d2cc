/**
 * The seam of the restore strategies. A restore runs in the boot kernel, stopped at
 * RESUME_CHECK, with an image that has already been validated completely (signature,
 * header, metadata, every page checksum, build id, RAM size). It comes in two steps:
 *
 *   plan   decides, on the harness's private view, whether and how the image fits the
 *          boot kernel's memory; it writes nothing, and refuses (RestoreRefusedError,
 *          with the numbers) when the boot kernel cannot satisfy it: the image stays
 *          resumable;
 *   load   takes its frames, streams the image in (parts.ts: loadImage checks every page
 *          it hands over), builds its PBE lists and relocates the trampoline, and
 *          returns what the guest needs to jump into the trampoline.
 *
 * The unsafe-frame bitmap, the allocation pass, the PBE list and the trampoline are
 * shared parts (parts.ts) that several strategies use.
 */
import type { OptionSpecs, OptionValues, StatSpecs, StatValues } from '../declarations.ts';
import { HiberlabError } from '../errors.ts';
import type { SwapDevice, ValidatedImage } from '../image/index.ts';
import type { Guest, ResumeDecision } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import type { PhaseTimer } from '../metrics/timer.ts';

export interface RestoreContext {
  readonly guest: Guest;
  readonly swap: SwapDevice;
  readonly image: ValidatedImage;
  readonly progress: Progress;
  /** Phases of the report (plan and load are timed by the framework; a strategy may time parts of them). */
  readonly timer: PhaseTimer;
}

export interface RestoreStrategy<O extends OptionSpecs = OptionSpecs, S extends StatSpecs = StatSpecs, P = unknown> {
  /** Lower-case, no spaces: what --restore takes. */
  readonly name: string;
  readonly description: string;
  /** Who proposed it, when and where. */
  readonly origin: string;
  readonly options: O;
  readonly stats: S;
  /** Decides without writing guest memory; throws RestoreRefusedError if the image does not fit. */
  plan(ctx: RestoreContext, options: OptionValues<O>): Promise<P> | P;
  /** Carries the plan out: from here on guest memory is written. */
  load(ctx: RestoreContext, plan: P): Promise<RestoreLoad<S>>;
}

/** What a load gives back: the jump into the trampoline, and its numbers. */
export interface RestoreLoad<S extends StatSpecs = StatSpecs> {
  readonly decision: Extract<ResumeDecision, { resume: true }>;
  /** Image pages loaded straight into their original frames. */
  readonly inPlacePages: number;
  /** Image pages the trampoline copies to their original frames (one PBE each). */
  readonly pbes: number;
  /** Image pages the boot kernel already held, byte for byte, in their original frames: left as they were (compare-on-load). Default 0. */
  readonly unchangedPages?: number;
  readonly stats: StatValues<S>;
  /** The frames loaded in place (allocator-bitmap words), for pictures. */
  readonly inPlace?: Uint32Array;
}

/** Declares a restore strategy (identity, for type inference of its options, stats and plan). */
export function defineRestoreStrategy<const O extends OptionSpecs, const S extends StatSpecs, P>(strategy: RestoreStrategy<O, S, P>): RestoreStrategy<O, S, P> {
  return strategy;
}

export interface RestoreReport {
  readonly strategy: string;
  readonly options: Readonly<Record<string, number | boolean | undefined>>;
  readonly pagesLoaded: number;
  /** Pages loaded straight into their original frame (free in the boot kernel). */
  readonly inPlacePages: number;
  /** Pages loaded elsewhere and copied by the trampoline (one PBE each). */
  readonly pbes: number;
  /** Pages the boot kernel already held, identical, in their original frames: not loaded at all. inPlacePages + pbes + unchangedPages = pagesLoaded. */
  readonly unchangedPages: number;
  /** Frames the restore took from the boot kernel's allocator (safe pages, PBE pages, bitmaps, trampoline, in-place frames). */
  readonly snapshotFrames: number;
  /** Frames the boot kernel itself used when the restore began (its kernel, tables, stacks, caches read at boot). */
  readonly bootKernelFrames: number;
  readonly phasesMs: Readonly<Record<string, number>>;
  /** The strategy's own statistics, as it declared them. */
  readonly stats: Readonly<Record<string, unknown>>;
}

/** The restore cannot proceed; nothing in guest memory was touched. */
export class RestoreRefusedError extends HiberlabError<'RESTORE_REFUSED', Record<string, number>> {
  constructor(message: string, facts: Record<string, number> = {}) {
    super('RESTORE_REFUSED', message, facts);
  }
}
