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
import tmp from 'tmp';
import { runCycle } from '../src/cycle.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';

const MiB = 1024 * 1024;

export interface LiveBenchRow {
  ramMiB: number;
  workload: string;
  strategy: string;
  pagesSaved: number;
  downtimeMs: number;
  downtimeInstructions: number;
  atomicCopyPages: number;
  flaggedPages?: number;
  pagesChanged?: number;
  largestImageFraction: number;
  verdict: string;
}

export async function benchLive(ramMiB = 128): Promise<LiveBenchRow[]> {
  const image = loadGuestImage();
  // Static data of 40 % of RAM plus a churn of 2 % of RAM: the pages written during the
  // save are about 5 % of the pages saved (swsusp cannot save more than half of RAM).
  const workload = `churn:${(ramMiB * 0.02).toFixed(2)}M@1000,cache:${Math.round(ramMiB * 0.4)}M`;
  const rows: LiveBenchRow[] = [];
  for (const save of ['swsusp', 'wp-full', 'cow']) {
    const r = await runCycle({
      ramBytes: ramMiB * MiB, workload, seed: 1, save, image, prefault: true, oracle: true,
      imagePath: tmp.tmpNameSync({ prefix: 'hiberlab-bench-live-', postfix: '.swap' }),
      saveOptions: save === 'wp-full' ? { measureWrites: true } : undefined,
    });
    rows.push({
      ramMiB, workload, strategy: save,
      pagesSaved: r.save.pagesSaved,
      downtimeMs: r.save.downtime.ms,
      downtimeInstructions: r.save.downtime.instructions,
      atomicCopyPages: r.save.atomicCopyPages,
      flaggedPages: r.save.live?.flaggedPages,
      pagesChanged: r.save.live?.pagesChanged,
      largestImageFraction: r.save.largestImageFraction,
      verdict: r.verdict,
    });
  }
  return rows;
}

export function renderLive(rows: LiveBenchRow[]): string {
  const t = new Table({ head: ['RAM', 'save', 'pages saved', 'downtime', 'vs swsusp (wp-full ≤ 0.1)', 'atomic copy', 'faulted / changed', 'largest image', 'cycle'], style: { head: [], border: [] } });
  for (const r of rows) {
    const base = rows.find((x) => x.strategy === 'swsusp' && x.ramMiB === r.ramMiB);
    t.push([
      `${r.ramMiB} MiB`, r.strategy, r.pagesSaved, `${r.downtimeMs.toFixed(1)} ms`, base ? (r.downtimeMs / base.downtimeMs).toFixed(3) : '-',
      r.atomicCopyPages, r.flaggedPages === undefined ? '-' : `${r.flaggedPages} / ${r.pagesChanged ?? '-'}`,
      `${(r.largestImageFraction * 100).toFixed(1)} %`, r.verdict,
    ]);
  }
  return t.toString();
}

export function liveMarkdown(rows: LiveBenchRow[]): string {
  const lines = [
    '## Saving while running: downtime, atomic copy, largest image',
    '',
    'Workload: static cache pages (40 % of RAM) plus a churn over 2 % of RAM at 1000 writes per guest ms, so that',
    'the pages written during the save are about 5 % of the pages saved; prefaulted,',
    'restore bitmap-pbe, every cycle checked against the oracle. Downtime = from the FREEZE command until the guest',
    'runs again (cow: the thaw) or the image is committed (swsusp, wp-full), oracle capture excluded.',
    '"faulted / changed": wp-full\'s pages copied because they faulted, against the protected pages whose',
    'contents really changed before the atomic point (a host copy taken when protection started).',
    'Largest image: what this algorithm could save on this machine, as a fraction of RAM',
    '(swsusp: half of what the memory bitmaps leave; wp-full: RAM less the atomic copy and the fault',
    'bitmap; cow: RAM less the unprotectable pages and the reserve pool).',
    '',
    '| RAM | save | pages saved | downtime | downtime / swsusp (wp-full target ≤ 0.1) | guest instructions freeze → atomic point | atomic copy pages | faulted / changed | largest image | cycle |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const base = rows.find((x) => x.strategy === 'swsusp' && x.ramMiB === r.ramMiB);
    lines.push(
      `| ${r.ramMiB} MiB | ${r.strategy} | ${r.pagesSaved} | ${r.downtimeMs.toFixed(1)} ms | ${base ? (r.downtimeMs / base.downtimeMs).toFixed(3) : '-'} | ${r.downtimeInstructions} | ${r.atomicCopyPages} | ` +
        `${r.flaggedPages === undefined ? '-' : `${r.flaggedPages} / ${r.pagesChanged ?? '-'}`} | ${(r.largestImageFraction * 100).toFixed(1)} % | ${r.verdict} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
