/**
 * The seam of the save strategies (DESIGN.md, principle 4). A strategy declares its
 * options and statistics and supplies only its own steps; a SaveSession (session.ts)
 * does what every save shares: freeze and thaw, the downtime clock, making room, the
 * atomic point with the oracle and the saved context, memory accounting, the image
 * stream, the report. docs/ADDING-A-STRATEGY.md shows a whole strategy in one file.
 */
import { HiberlabError } from '../errors.ts';
import type { OptionSpecs, OptionValues, StatSpecs, StatValues } from '../declarations.ts';
import type { CommitOptions, CommitResult, ImageStream } from '../image/index.ts';
import type { SaveSession } from './session.ts';

export interface SaveStrategy<O extends OptionSpecs = OptionSpecs, S extends StatSpecs = StatSpecs> {
  /** Lower-case, no spaces: what --save takes. */
  readonly name: string;
  /** One line: the idea. */
  readonly description: string;
  /** Who proposed it, when and where (for docs and reports). */
  readonly origin: string;
  readonly options: O;
  readonly stats: S;
  /**
   * The strategy's own steps, on a session the guest is running in (not frozen): it must
   * call session.atomic() once, with the atomic point inside, and commit the image
   * through session.commit(). On return the session powers the guest off.
   */
  save(session: SaveSession, options: OptionValues<O>): Promise<SaveOutcome<S>>;
}

/** What a strategy's steps give back; the session adds what it measured itself. */
export interface SaveOutcome<S extends StatSpecs = StatSpecs> {
  /** What session.commit() returned. */
  readonly image: CommitResult;
  /** Pages copied inside the atomic section. */
  readonly atomicCopyPages: number;
  /** The strategy's statistics, by the names it declared. */
  readonly stats: StatValues<S>;
  /** Frames that faulted while the image was written (allocator-bitmap words), for pictures. */
  readonly faulted?: Uint32Array;
}

/** Declares a save strategy (identity, for type inference of its options and stats). */
export function defineSaveStrategy<const O extends OptionSpecs, const S extends StatSpecs>(strategy: SaveStrategy<O, S>): SaveStrategy<O, S> {
  return strategy;
}

/** Everything a save reports, the same for every strategy; strategy-specific numbers are in `stats`. */
export interface SaveReport {
  readonly strategy: string;
  /** The options the strategy ran with (defaults filled in). */
  readonly options: Readonly<Record<string, number | boolean | undefined>>;
  /** Pages in the image. */
  readonly pagesSaved: number;
  readonly imageBytes: number;
  /** Page bytes written to the swap device, rewrites included. */
  readonly pageBytesWritten: number;
  /** Milliseconds from opening the image to its commit, instrumentation excluded (the time of Linux's "Wrote … kbytes in … seconds"). */
  readonly writeMs: number;
  /** Pages copied inside the atomic section. */
  readonly atomicCopyPages: number;
  /** Frames the hibernation took from the guest's allocator (copies, bitmaps, pools, buffers), counted before power-off. */
  readonly snapshotFrames: number;
  /** Reclaimable cache pages the session dropped to make room. */
  readonly cachePagesDropped: number;
  readonly tasksFrozen: number;
  /** Frames of the guest; in use and free at the atomic point; in use but not RAM (NOSAVE: holes in the memory map, never saved). */
  readonly memory: { readonly frames: number; readonly usedAtAtomic: number; readonly freeAtAtomic: number; readonly nosaveFrames: number };
  /**
   * Milliseconds per phase, in the order they ran. Instrumentation of the harness (the
   * oracle's capture, checks) is timed as phases of its own and left out of the phase
   * it ran in and of the downtime.
   */
  readonly phasesMs: Readonly<Record<string, number>>;
  /**
   * From the freeze until the guest could run again: thawed (the guest's THAWED
   * hypercall) or, for saves that power off, the image committed. Wall ms (the
   * instrumentation excluded) and guest instructions retired from the freeze to the
   * atomic point.
   */
  readonly downtime: { readonly ms: number; readonly instructions: number };
  /** The strategy's own statistics, as it declared them. */
  readonly stats: Readonly<Record<string, unknown>>;
}

/** Hibernation was refused before anything irreversible happened; the guest runs on. */
export class HibernationRefusedError extends HiberlabError<'HIBERNATION_REFUSED', Record<string, number>> {
  constructor(message: string, facts: Record<string, number>) {
    super('HIBERNATION_REFUSED', message, facts);
  }
}

export type { CommitOptions, CommitResult, ImageStream };
