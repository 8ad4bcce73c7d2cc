/**
 * Before each measured operation the benchmark lets the process and the disk settle, so
 * that no column pays for the one measured before it:
 *   - V8 collects the garbage left behind (a v86 state of up to 1 GiB). Without this its
 *     collection lands in whichever operation comes next.
 *   - V8 then frees the big buffers on a helper thread, which competes with the guest for
 *     this machine's two cores for a while: a freeze right after is much slower than after
 *     a pause of QUIET_MS.
 *   - `sync` writes back and commits what the previous operation left dirty (this file
 *     system is mounted with `discard`, so deleting the last run's files also queues work
 *     for the disk).
 * Every column, ours and the references alike, gets the same treatment. `npm run bench`
 * runs with --expose-gc; without it only the disk settles.
 *
 * It also runs with --no-flush-bytecode. V8 throws away the bytecode (and with it the
 * compiled code) of functions that have not run for a few major collections, and every
 * cycle here allocates a guest's RAM and lets it go: code that runs once per cycle, as
 * the whole downtime path does, would be compiled afresh from source and interpreted,
 * much slower, in every cycle. A kernel's hibernation code is machine code that stays
 * where it is; the flag keeps ours too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** How long the host gets after the collection: V8 frees big backing stores on a helper thread. */
const QUIET_MS = 250;

export async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await execa('sync');
  await sleep(QUIET_MS);
}

/** The flags `npm run bench` passes to node, for the report. */
export function benchFlags(): string {
  const flags = process.execArgv.filter((a) => a === '--expose-gc' || a === '--no-flush-bytecode');
  return flags.length ? flags.join(' ') : 'none (run it with npm run bench)';
}
