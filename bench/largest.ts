/**
 * The largest image each save strategy can save on a machine, measured by real saves:
 * the guest's RAM is filled by one slow `stream` workload (it allocates its buffer at
 * boot and keeps writing it, a little), and the buffer's size is bisected, 1 MiB at a
 * time, between a size that saves and one that does not (the save refused, or the
 * buffer not even fitting at boot). The largest size that saved is then run as a whole
 * cycle judged by the oracle. Nothing here is computed from a formula: the limits
 * follow from the frames each algorithm takes from the guest's allocator.
 */
import Table from 'cli-table3';
import { hibernate, runCycle } from '../src/cycle.ts';
import { errorCode } from '../src/errors.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { SAVE_STRATEGIES } from '../src/strategies.ts';
import { settle } from './settle.ts';

const MiB = 1024 * 1024;

export interface LargestRow {
  readonly ramMiB: number;
  readonly strategy: string;
  /** The largest stream buffer (MiB) whose save succeeded. */
  readonly savedAtMiB: number;
  /** Pages in that image, and as a fraction of the guest's frames. */
  readonly pagesSaved: number;
  readonly fraction: number;
  /** The smallest buffer (MiB) that did not save, and why. */
  readonly failedAtMiB: number;
  readonly failure: string;
  /** Saves the bisection made. */
  readonly probes: number;
  /**
   * The largest buffer (MiB) whose whole cycle (save, resume with bitmap-pbe, oracle)
   * passed, its pages, and why the next size up failed when that is below savedAtMiB
   * (an image the boot kernel cannot restore: too few safe frames).
   */
  readonly resumedAtMiB: number;
  readonly pagesResumed: number;
  readonly resumeFailure: string;
  /** Cycles that search took. */
  readonly cycles: number;
  /** The whole cycle at resumedAtMiB, judged by the oracle. */
  readonly verdict: string;
}

type Probe = { ok: true; pagesSaved: number } | { ok: false; why: string };

async function probe(ramMiB: number, save: string, bufferMiB: number): Promise<Probe> {
  await settle();
  try {
    const h = await hibernate({ ramBytes: ramMiB * MiB, workload: `stream:${bufferMiB}M@1`, seed: 1, save, oracle: false, warmupMs: 20, image: loadGuestImage() });
    return { ok: true, pagesSaved: h.save.pagesSaved };
  } catch (err) {
    const code = errorCode(err);
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, why: code === 'GUEST_PANIC' && /out of memory/.test(message) ? 'the buffer does not fit in RAM at boot' : `${code}: ${message.split('\n')[0]}` };
  }
}

/** Bisects the stream buffer for every registered save strategy on a guest of `ramMiB`. */
export async function benchLargest(ramMiB: number): Promise<LargestRow[]> {
  const rows: LargestRow[] = [];
  for (const save of SAVE_STRATEGIES.keys()) {
    let lo = 1;
    let hi = ramMiB;
    let probes = 0;
    let best = await probe(ramMiB, save, lo);
    probes++;
    if (!best.ok) throw new Error(`${save} cannot save a ${lo} MiB buffer on ${ramMiB} MiB: ${best.why}`);
    let failure = 'the buffer does not fit in RAM at boot';
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const p = await probe(ramMiB, save, mid);
      probes++;
      if (p.ok) {
        lo = mid;
        best = p;
      } else {
        hi = mid;
        failure = p.why;
      }
    }
    // The largest image a boot kernel can also restore: whole cycles, bisected below the
    // largest save when that one does not resume.
    const cycle = async (bufferMiB: number) => {
      await settle();
      return runCycle({ ramBytes: ramMiB * MiB, workload: `stream:${bufferMiB}M@1`, seed: 1, save, warmupMs: 20, image: loadGuestImage() });
    };
    let check = await cycle(lo);
    let cycles = 1;
    let resumedAt = lo;
    let resumeFailure = '';
    if (check.verdict !== 'pass') {
      resumeFailure = check.failures[0] ?? check.verdict;
      let good = 1;
      let bad = lo;
      let passing: Awaited<ReturnType<typeof cycle>> | undefined;
      while (bad - good > 1) {
        const mid = (good + bad) >>> 1;
        const c = await cycle(mid);
        cycles++;
        if (c.verdict === 'pass') {
          good = mid;
          passing = c;
        } else {
          bad = mid;
          resumeFailure = c.failures[0] ?? c.verdict;
        }
      }
      if (!passing) {
        passing = await cycle(good);
        cycles++;
      }
      check = passing;
      resumedAt = good;
    }
    const pagesSaved = (best as { pagesSaved: number }).pagesSaved;
    rows.push({
      ramMiB, strategy: save, savedAtMiB: lo, pagesSaved, fraction: (pagesSaved * 4096) / (ramMiB * MiB), failedAtMiB: hi, failure, probes,
      resumedAtMiB: resumedAt, pagesResumed: check.save.pagesSaved, resumeFailure, cycles, verdict: check.verdict,
    });
  }
  return rows;
}

export function renderLargest(rows: readonly LargestRow[]): string {
  const t = new Table({ head: ['RAM', 'save', 'largest buffer saved', 'pages saved', 'of RAM', 'first refused', 'why', 'largest resumed', 'of RAM', 'cycle'], style: { head: [], border: [] } });
  for (const r of rows) {
    t.push([`${r.ramMiB} MiB`, r.strategy, `${r.savedAtMiB} MiB`, r.pagesSaved, `${(r.fraction * 100).toFixed(1)} %`, `${r.failedAtMiB} MiB`, r.failure.slice(0, 60), `${r.resumedAtMiB} MiB`, percentOfRam(r.pagesResumed, r.ramMiB), r.verdict]);
  }
  return t.toString();
}

export function largestMarkdown(rows: readonly LargestRow[]): string {
  const lines = [
    '## Largest image, by real saves',
    '',
    'One `stream:XM@1` workload (a buffer allocated at boot, written slowly), X bisected 1 MiB at a',
    'time between a size whose save succeeded and one whose save was refused (or whose buffer did',
    'not fit in RAM at boot); no oracle on the probes. The largest X that saved is then run as a',
    'whole cycle (resumed by bitmap-pbe) judged by the oracle; if the boot kernel cannot restore it,',
    'whole cycles are bisected below it for the largest image that also resumes ("largest resumed",',
    '"why not resumed": the first failure of the next size up). "of RAM" = pages × 4 KiB / RAM.',
    '',
    '| RAM | save | largest buffer saved | pages saved | of RAM | first refused at | why | probes | largest resumed | pages | of RAM | why not resumed above | cycles | cycle |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const cell = (text: string) => text.replace(/\|/g, '\\|') || '-';
  for (const r of rows) {
    lines.push(
      `| ${r.ramMiB} MiB | ${r.strategy} | ${r.savedAtMiB} MiB | ${r.pagesSaved} | ${(r.fraction * 100).toFixed(1)} % | ${r.failedAtMiB} MiB | ${cell(r.failure)} | ${r.probes} | ` +
        `${r.resumedAtMiB} MiB | ${r.pagesResumed} | ${percentOfRam(r.pagesResumed, r.ramMiB)} | ${cell(r.resumeFailure)} | ${r.cycles} | ${r.verdict} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function percentOfRam(pages: number, ramMiB: number): string {
  return `${((pages * 4096 * 100) / (ramMiB * MiB)).toFixed(1)} %`;
}
