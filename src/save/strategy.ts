/**
 * What every save strategy gets and gives (DESIGN.md, principle 4): the same inputs,
 * the same metrics, the same report, so strategies compare side by side.
 */
import type { Guest } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import type { Oracle } from '../oracle/oracle.ts';
import type { SwapDevice } from '../image/index.ts';

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
  readonly memory: { readonly frames: number; readonly usedAtAtomic: number; readonly freeAtAtomic: number };
  /**
   * Milliseconds per phase (freeze, prepare, atomic, write, power-off). "oracle" is the
   * harness's own capture of the atomic point, inside the atomic section but not part
   * of the algorithm: it is timed apart and not included in "atomic".
   */
  readonly phasesMs: Readonly<Record<string, number>>;
}

export interface SaveStrategy {
  readonly name: string;
  readonly description: string;
  /** Runs the whole save; the guest is left powered off. */
  save(ctx: SaveContext): Promise<SaveReport>;
}

/** Hibernation was refused before anything irreversible happened; the guest runs on. */
export class HibernationRefusedError extends Error {
  constructor(message: string, readonly facts: Record<string, number>) {
    super(message);
    this.name = 'HibernationRefusedError';
  }
}
