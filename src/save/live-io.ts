/**
 * The I/O model of saves that write while the guest runs (wp-full, cow): the swap
 * device moves `bytesPerMs` image bytes per emulated millisecond. The harness writes
 * one tick's worth of pages, lets the guest run one timer tick (1000 / HZ guest ms),
 * and so on, so the guest's progress and the image's progress interleave as they
 * would with a real disk of that speed.
 */
import { CONSTANTS } from '../abi.ts';
import type { Guest } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import { PAGE_SIZE } from '../units.ts';

export interface LiveIoOptions {
  /** Image bytes the swap device writes per emulated millisecond. Default 256 KiB (≈ 256 MB/s). */
  readonly bytesPerMs?: number;
}

export const DEFAULT_BYTES_PER_MS = 256 * 1024;

/** Pages the device writes during one timer tick of guest time. */
export function pagesPerTick(options: LiveIoOptions = {}): number {
  const msPerTick = 1000 / CONSTANTS.HZ.value;
  return Math.max(1, Math.floor(((options.bytesPerMs ?? DEFAULT_BYTES_PER_MS) * msPerTick) / PAGE_SIZE));
}

/**
 * Calls `writeBatch(first, count)` for indices [0, total) in batches of one tick's
 * worth, running the guest one tick between batches. Returns the guest ticks it took.
 */
export async function writeWhileRunning(
  guest: Guest,
  total: number,
  options: LiveIoOptions,
  progress: Progress,
  label: string,
  writeBatch: (first: number, count: number) => Promise<void> | void,
): Promise<{ ticks: number }> {
  const perTick = pagesPerTick(options);
  const phase = progress.phase(label, total);
  let ticks = 0;
  for (let first = 0; first < total; first += perTick) {
    await writeBatch(first, Math.min(perTick, total - first));
    phase.update(Math.min(total, first + perTick));
    await guest.runTicks(1);
    ticks++;
  }
  phase.end();
  return { ticks };
}
