/**
 * Saves that write while the guest runs, against swsusp, on the same guest and data:
 * downtime (freeze → running again or image committed), the atomic copy against the
 * pages that really changed during the save (wp-full's false positives), and the
 * largest image each algorithm could save, as a fraction of RAM.
 *
 * Workload: static data (reclaimable cache pages, which nobody writes) plus a churn whose
 * working set is about 5 % of the pages saved: much to save, little to copy.
 */
import Table from 'cli-table3';
import { runCycle } from '../src/cycle.ts';
import { SAVE_STRATEGIES } from '../src/strategies.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { settle } from './settle.ts';

const MiB = 1024 * 1024;

export interface LiveBenchRow {
  ramMiB: number;
  workload: string;
  strategy: string;
  pagesSaved: number;
  /** Best of the clean runs (no oracle, no measurement). */
  downtimeMs: number;
  /** Every clean run's downtime, in run order. */
  downtimeSamplesMs: number[];
  downtimeInstructions: number;
  atomicCopyPages: number;
  /** Page bytes written (rewrites included) and the time from opening the image to its commit, of the best run. */
  pageBytesWritten: number;
  writeMs: number;
  /** The bytes on the disk as a percentage of the pages (the suspend module reports it; below 100 when it compresses). */
  storedPercent?: number;
  flaggedPages?: number;
  pagesChanged?: number;
  /** pass if the instrumented run passed the oracle and every clean run resumed and verified. */
  verdict: string;
}

/**
 * For each algorithm: `reps` clean cycles (no oracle capture, no changed-page
 * measurement: the resume checks every page against the image CRCs and the tasks verify
 * their data) whose best downtime counts, and one instrumented cycle (oracle at the
 * atomic point, wp-full's host copy for "faulted / changed"). The instrumentation is
 * timed apart from the downtime, but its big allocations (a copy of RAM) still make
 * V8 collect garbage at odd moments: hence the clean runs.
 */
export async function benchLive(ramMiB = 128, reps = 3): Promise<LiveBenchRow[]> {
  const image = loadGuestImage();
  // Static data of 40 % of RAM plus a churn of 2 % of RAM: the pages written during the
  // save are about 5 % of the pages saved (swsusp cannot save more than half of RAM).
  const workload = `churn:${(ramMiB * 0.02).toFixed(2)}M@1000,cache:${Math.round(ramMiB * 0.4)}M`;
  const rows: LiveBenchRow[] = [];
  const cycle = async (save: string, instrumented: boolean, options?: Record<string, unknown>) => {
    await settle();
    return runCycle({
      ramBytes: ramMiB * MiB, workload, seed: 1, save, image, prefault: true, oracle: instrumented,
      // The instrumented run measures what really changed, where the strategy can.
      saveOptions: { ...options, ...(instrumented && 'measureWrites' in SAVE_STRATEGIES.get(save)!.options ? { measureWrites: true } : {}) },
    });
  };
  // Every strategy, and the suspend module compressing (its option changes what it writes).
  const variants: Array<{ label: string; save: string; options?: Record<string, unknown> }> = [
    ...[...SAVE_STRATEGIES.keys()].map((save) => ({ label: save, save })),
    { label: 'suspend-module --compress', save: 'suspend-module', options: { compress: true } },
  ];
  for (const { label, save, options } of variants) {
    const checked = await cycle(save, true, options);
    const clean = [];
    for (let i = 0; i < reps; i++) clean.push(await cycle(save, false, options));
    const best = clean.reduce((a, b) => (b.save.downtime.ms < a.save.downtime.ms ? b : a));
    rows.push({
      ramMiB, workload, strategy: label,
      pagesSaved: best.save.pagesSaved,
      downtimeMs: best.save.downtime.ms,
      downtimeSamplesMs: clean.map((r) => r.save.downtime.ms),
      downtimeInstructions: best.save.downtime.instructions,
      atomicCopyPages: best.save.atomicCopyPages,
      pageBytesWritten: best.save.pageBytesWritten,
      writeMs: best.save.writeMs,
      storedPercent: best.save.stats.storedPercent as number | undefined,
      flaggedPages: checked.save.stats.flaggedPages as number | undefined,
      pagesChanged: checked.save.stats.pagesChanged as number | undefined,
      verdict: checked.verdict === 'pass' && clean.every((r) => r.verdict === 'pass') ? 'pass' : 'FAIL',
    });
  }
  return rows;
}

export function renderLive(rows: LiveBenchRow[]): string {
  const t = new Table({ head: ['RAM', 'save', 'pages saved', 'downtime', 'vs swsusp (wp-full ≤ 0.1)', 'atomic copy', 'faulted / changed', 'cycle'], style: { head: [], border: [] } });
  for (const r of rows) {
    const base = rows.find((x) => x.strategy === 'swsusp' && x.ramMiB === r.ramMiB);
    t.push([
      `${r.ramMiB} MiB`, r.strategy, r.pagesSaved, `${r.downtimeMs.toFixed(1)} ms`, base ? (r.downtimeMs / base.downtimeMs).toFixed(3) : '-',
      r.atomicCopyPages, r.flaggedPages === undefined ? '-' : `${r.flaggedPages} / ${r.pagesChanged ?? '-'}`,
      r.verdict,
    ]);
  }
  return t.toString();
}

export function liveMarkdown(rows: LiveBenchRow[]): string {
  const lines = [
    '## Saving while running: downtime and atomic copy',
    '',
    'Workload: static cache pages (40 % of RAM) plus a churn over 2 % of RAM at 1000 writes per guest ms, so that',
    'the pages written during the save are about 5 % of the pages saved; prefaulted,',
    'restore bitmap-pbe. Downtime = from the FREEZE command until the guest runs again (cow: its THAWED hypercall) or the',
    'image is committed (swsusp, wp-full): the best of several clean runs (no oracle; each resumed, its pages',
    'checked against the image CRCs and its tasks\' data verified), all listed; the other columns and the',
    'oracle check come from one more, instrumented run per algorithm. Each cycle starts on a settled',
    'process and disk (bench/settle.ts).',
    'Written: page bytes written (rewrites included) from opening the image to its commit, in the kernel\'s',
    'words ("Wrote N kbytes in S seconds"), host time; "stored": the bytes on the disk as a share of those',
    '(the suspend module says it; with --compress, LZ4 blocks packed).',
    '"faulted / changed": wp-full\'s pages copied because they faulted, against the protected pages whose',
    'contents really changed before the atomic point (a host copy taken when protection started).',
    '',
    '| RAM | save | pages saved | downtime (best) | downtime / swsusp (wp-full target ≤ 0.1) | all runs | guest instructions freeze → atomic point | atomic copy pages | written | stored | faulted / changed | cycle |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const base = rows.find((x) => x.strategy === 'swsusp' && x.ramMiB === r.ramMiB);
    lines.push(
      `| ${r.ramMiB} MiB | ${r.strategy} | ${r.pagesSaved} | ${r.downtimeMs.toFixed(1)} ms | ${base ? (r.downtimeMs / base.downtimeMs).toFixed(3) : '-'} | ${r.downtimeSamplesMs.map((x) => x.toFixed(0)).join(', ')} ms | ${r.downtimeInstructions} | ${r.atomicCopyPages} | ${wrote(r)} | ${r.storedPercent === undefined ? '-' : `${r.storedPercent} %`} | ` +
        `${r.flaggedPages === undefined ? '-' : `${r.flaggedPages} / ${r.pagesChanged ?? '-'}`} | ${r.verdict} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** "N kbytes in S s (X MB/s)", as the kernel says it. */
function wrote(r: LiveBenchRow): string {
  const kb = Math.round(r.pageBytesWritten / 1024);
  return `${kb} kbytes in ${(r.writeMs / 1000).toFixed(2)} s (${(r.pageBytesWritten / 1e6 / (r.writeMs / 1000)).toFixed(0)} MB/s)`;
}
