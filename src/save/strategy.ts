/**
 * What every save strategy gets and gives (DESIGN.md, principle 4): the same inputs,
 * the same metrics, the same report, so strategies compare side by side.
 */
import type { Guest } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import type { Oracle } from '../oracle/oracle.ts';
import type { SwapDevice } from '../image/index.ts';
import { HiberlabError } from '../errors.ts';

export interface SaveContext {
  readonly guest: Guest;
  /** The swap device the image goes to (the guest's IDE disk, written by the harness). */
  readonly swap: SwapDevice;
  readonly progress: Progress;
  /**
   * Called at the atomic point with the oracle the cycle will be judged against.
   * Without it no oracle is captured (the resume then checks pages against the image).
   */
  readonly onOracle?: (oracle: Oracle) => void;
}

export interface SaveReport {
  readonly strategy: string;
  /** Pages in the image. */
  readonly pagesSaved: number;
  readonly imageBytes: number;
  /** Pages copied inside the atomic section. */
  readonly atomicCopyPages: number;
  /** Frames taken from the guest's allocator for the hibernation (copies, bitmaps, buffers). */
  readonly snapshotFrames: number;
  readonly cachePagesDropped: number;
  readonly tasksFrozen: number;
  /** Frames of RAM, used and free when the image was defined. */
  /** Frames of the guest; in use and free at the atomic point; in use but not RAM (NOSAVE: holes in the memory map, never saved). */
  readonly memory: { readonly frames: number; readonly usedAtAtomic: number; readonly freeAtAtomic: number; readonly nosaveFrames: number };
  /**
   * Milliseconds per phase (freeze, prepare, atomic, write, power-off). "oracle" is the
   * harness's own capture of the atomic point, inside the atomic section but not part
   * of the algorithm: it is timed apart and not included in "atomic".
   */
  readonly phasesMs: Readonly<Record<string, number>>;
  /**
   * From the freeze until the guest could run again: thawed (cow: the guest's THAWED
   * hypercall, sent the instant its tasks are runnable) or, for saves that power off,
   * the image committed. Wall ms (the oracle capture excluded) and guest
   * instructions retired between the freeze and the atomic point.
   */
  readonly downtime: { readonly ms: number; readonly instructions: number };
  /** The largest image this algorithm could have saved on this machine, as a fraction of RAM. */
  readonly largestImageFraction: number;
  /** Saves that write while the guest runs (wp-full, cow). */
  readonly live?: LiveSaveStats;
}

export interface PrecopyRound {
  readonly round: number;
  /** Pages written in this round (round 0 = the full pass). */
  readonly pagesWritten: number;
  /** Pages that faulted (are dirty again) when the round ended. */
  readonly dirtyAfter: number;
  /** Guest timer ticks the round took under the I/O model. */
  readonly ticks: number;
}

export interface LiveSaveStats {
  readonly faults: number;
  readonly pagesFaulted: number;
  /** Pages copied atomically because they faulted. */
  readonly flaggedPages: number;
  /** Pages copied atomically because they can never be protected (page tables, stacks, descriptor tables). */
  readonly unprotectablePages: number;
  readonly rounds: readonly PrecopyRound[];
  readonly stopReason: string;
  /** Page bytes written to the image, rewrites included. */
  readonly pageBytesWritten: number;
  readonly liveTicks: number;
  /** cow: pages the writer saved early because the reserve pool was exhausted. */
  readonly savedEarly?: number;
  /** wp-full with measureWrites: protected pages whose contents changed before the atomic point. */
  readonly pagesChanged?: number;
  /** wp-full: copy frames taken at the atomic point because the reservation made before the freeze was short. */
  readonly copyFramesAdded?: number;
}

export interface SaveStrategy {
  readonly name: string;
  readonly description: string;
  /** Runs the whole save; the guest is left powered off. */
  save(ctx: SaveContext): Promise<SaveReport>;
}

/** Hibernation was refused before anything irreversible happened; the guest runs on. */
export class HibernationRefusedError extends HiberlabError<'HIBERNATION_REFUSED', Record<string, number>> {
  constructor(message: string, facts: Record<string, number>) {
    super('HIBERNATION_REFUSED', message, facts);
  }
}
