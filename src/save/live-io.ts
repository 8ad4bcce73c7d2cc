/**
 * The I/O model of saves that write while the guest runs (wp-full, cow): the swap
 * device moves `io` KiB of image per emulated millisecond. The harness writes one
 * tick's worth of pages, lets the guest run one timer tick (1000 / HZ guest ms), and so
 * on, so the guest's progress and the image's progress interleave as they would with a
 * real disk of that speed.
 */
import { CONSTANTS } from '../abi.ts';
import type { IntegerOption } from '../declarations.ts';
import type { Guest } from '../machine/guest.ts';
import type { Progress } from '../metrics/progress.ts';
import { PAGE_SIZE } from '../units.ts';

/** The option every live save declares: the swap device's speed while the guest runs. */
export const IO_OPTION = {
  kind: 'integer', default: 256, min: 1, max: 1 << 20, unit: 'KiB per guest ms',
  help: "the swap device's speed while the guest runs, in KiB per guest millisecond (256: about 256 MB/s)",
} as const satisfies IntegerOption;

/** Pages the device writes during one timer tick of guest time. */
export function pagesPerTick(kibPerMs: number): number {
  const msPerTick = 1000 / CONSTANTS.HZ.value;
  return Math.max(1, Math.floor((kibPerMs * 1024 * msPerTick) / PAGE_SIZE));
}

/**
 * Calls `writeBatch(first, count)` for indices [0, total) in batches of one tick's
 * worth, running the guest one tick between batches. Returns the guest ticks it took.
 */
export async function writeWhileRunning(
  guest: Guest,
  total: number,
  kibPerMs: number,
  progress: Progress,
  label: string,
  writeBatch: (first: number, count: number) => Promise<void> | void,
): Promise<{ ticks: number }> {
  const perTick = pagesPerTick(kibPerMs);
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
