/**
 * The restore strategies side by side: one image per machine size, saved once (swsusp,
 * by a kernel booted with a reserved region so that `reserved` can resume it too), then
 * restored from a copy of the file by every registered restore strategy, each in its
 * own boot kernel given the hibernated kernel's command line (so it has the caches read
 * at boot), each judged by the complete oracle. The numbers come from the strategies'
 * reports; nothing is computed from a formula.
 *
 * From the eat-unsafe and one-shot rows: Rafael J. Wysocki's table (LKML, April 2006),
 * copies and allocations one-shot saves, beside his own figures for an image of about
 * 100,000 pages.
 */
import { copyFileSync, rmSync } from 'node:fs';
import Table from 'cli-table3';
import tmp from 'tmp';
import { hibernate, resume } from '../src/cycle.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { RESTORE_STRATEGIES } from '../src/strategies.ts';
import { settle } from './settle.ts';

const MiB = 1024 * 1024;

/** The machines: RAM, the hibernated kernel's workload, its reserved region. */
export const RESTORE_MACHINES: Readonly<Record<number, { workload: string; reserveMiB: number }>> = {
  32: { workload: 'churn:1M@500,stream:8M,cache:2M@boot', reserveMiB: 8 },
  128: { workload: 'churn:4M@2000,stream:40M,cache:8M@boot', reserveMiB: 24 },
  // About 100,000 image pages, the size of Wysocki's 2006 figures.
  1024: { workload: 'churn:4M@2000,stream:372M,cache:16M@boot', reserveMiB: 64 },
};

export interface RestoreRow {
  readonly ramMiB: number;
  readonly pages: number;
  readonly strategy: string;
  readonly inPlace: number;
  readonly pbes: number;
  readonly unchanged: number;
  readonly allocations?: number;
  readonly eaten?: number;
  readonly compared?: number;
  readonly bootKernelFrames: number;
  readonly framesTaken: number;
  /** plan + load + the trampoline's copy, ms. */
  readonly restoreMs: number;
  readonly verdict: string;
  readonly refused?: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export async function benchRestore(ramMiB: number): Promise<RestoreRow[]> {
  const machine = RESTORE_MACHINES[ramMiB];
  if (!machine) throw new Error(`--restore-sizes: no restore machine of ${ramMiB} MiB (have ${Object.keys(RESTORE_MACHINES).join(', ')})`);
  const image = loadGuestImage();
  const dir = tmp.dirSync({ unsafeCleanup: true });
  const path = `${dir.name}/image.swap`;
  const reserveBytes = machine.reserveMiB * MiB;
  const rows: RestoreRow[] = [];
  try {
    await settle();
    const h = await hibernate({ ramBytes: ramMiB * MiB, workload: machine.workload, seed: 7, save: 'swsusp', reserveBytes, image, imagePath: path, warmupMs: 50 });
    for (const name of RESTORE_STRATEGIES.keys()) {
      const copy = `${dir.name}/${name}.swap`;
      copyFileSync(path, copy);
      await settle();
      const r = await resume({
        imagePath: copy, oracle: h.oracle, image, restore: name, workload: h.workload, seed: h.seed, verifyReportsExpected: h.verifyReportsExpected,
        reserveBytes: name === 'reserved' ? reserveBytes : undefined,
      });
      rmSync(copy, { force: true });
      const rs = r.restore;
      const s = rs?.stats ?? {};
      rows.push({
        ramMiB, pages: h.save.pagesSaved, strategy: name,
        inPlace: rs?.inPlacePages ?? 0, pbes: rs?.pbes ?? 0, unchanged: rs?.unchangedPages ?? 0,
        allocations: num(s.allocations), eaten: num(s.pagesEaten), compared: num(s.pagesCompared),
        bootKernelFrames: rs?.bootKernelFrames ?? 0, framesTaken: rs?.snapshotFrames ?? 0,
        restoreMs: (rs?.phasesMs.plan ?? 0) + (rs?.phasesMs.load ?? 0) + (r.phasesMs.trampoline ?? 0),
        verdict: r.status === 'resumed' ? (r.check?.verdict ?? 'fail') : r.status,
        refused: r.status === 'refused' ? r.reason : undefined,
      });
    }
  } finally {
    dir.removeCallback();
  }
  return rows;
}

const dash = (v: number | undefined) => (v === undefined ? '-' : String(v));
const mib = (frames: number) => `${((frames * 4096) / MiB).toFixed(1)} MiB`;

export function renderRestore(rows: readonly RestoreRow[]): string {
  const t = new Table({ head: ['RAM', 'pages', 'restore', 'in place', 'PBEs', 'equal', 'allocs', 'eaten', 'boot kernel + taken', 'ms', 'cycle'], style: { head: [], border: [] } });
  for (const r of rows) {
    t.push([`${r.ramMiB} MiB`, r.pages, r.strategy, r.inPlace, r.pbes, r.unchanged, dash(r.allocations), dash(r.eaten), `${mib(r.bootKernelFrames)} + ${mib(r.framesTaken)}`, r.restoreMs.toFixed(0), r.refused ? 'refused' : r.verdict]);
  }
  return t.toString();
}

/** Wysocki's figures: copies and allocations one-shot saves against eat-unsafe, per image. */
function wysockiRows(rows: readonly RestoreRow[]): string[] {
  const out: string[] = [];
  for (const ram of [...new Set(rows.map((r) => r.ramMiB))]) {
    const eat = rows.find((r) => r.ramMiB === ram && r.strategy === 'eat-unsafe');
    const one = rows.find((r) => r.ramMiB === ram && r.strategy === 'one-shot');
    if (!eat || !one || eat.refused || one.refused) continue;
    out.push(
      `| this lab, ${ram} MiB, x86 | ${eat.pages} | ${eat.pbes} | ${one.pbes} | **${eat.pbes - one.pbes}** | ${dash(eat.allocations)} | ${dash(one.allocations)} | ` +
        `**${eat.allocations !== undefined && one.allocations !== undefined ? eat.allocations - one.allocations : '-'}** | ${eat.verdict} / ${one.verdict} |`,
    );
  }
  return out;
}

export function restoreMarkdown(rows: readonly RestoreRow[]): string {
  const lines = [
    '## Restore strategies on the same image',
    '',
    'One image per machine, saved once by swsusp from a kernel booted with a reserved region',
    '(`reserve=`, so that `reserved` can resume it), then restored from a copy of the file by every',
    "restore strategy, each in a fresh boot kernel given the hibernated kernel's command line (it",
    'reads the same `cache:…@boot` pages at boot; only `reserved` boots with the region). Every',
    'restore is judged by the complete oracle ("cycle"). in place = loaded straight into the',
    'original frame; PBEs = loaded into a safe page and copied by the trampoline; equal = already',
    "held identical by the boot kernel, left as it was (compare-on-load); allocations and pages",
    'eaten where the strategy counts them; boot kernel = the frames it used itself when the',
    'restore began, taken = the frames the restore took from it (safe pages, PBE pages, bitmaps,',
    'trampoline, in-place frames): what the boot kernel needs is their sum. Time = plan + load +',
    "the trampoline's copy, one run (compare-on-load's load includes the boot kernel's ticks).",
    `Reserved regions: ${Object.entries(RESTORE_MACHINES).map(([ram, m]) => `${m.reserveMiB} MiB at ${ram} MiB`).join(', ')}.`,
    '',
    '| RAM | workload | image pages | restore | in place | PBEs (copies) | equal | allocations | pages eaten | pages compared | boot kernel | taken | needed | time | cycle |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const m = RESTORE_MACHINES[r.ramMiB];
    lines.push(
      `| ${r.ramMiB} MiB | \`${m?.workload ?? '?'}\` | ${r.pages} | ${r.strategy} | ${r.inPlace} | ${r.pbes} | ${r.unchanged} | ${dash(r.allocations)} | ${dash(r.eaten)} | ${dash(r.compared)} | ` +
        `${r.bootKernelFrames} | ${r.framesTaken} | ${mib(r.bootKernelFrames + r.framesTaken)} | ${r.restoreMs.toFixed(1)} ms | ${r.refused ? `refused: ${r.refused.replace(/\|/g, '\\|')}` : r.verdict} |`,
    );
  }
  lines.push(
    '',
    '### One-shot against eat-unsafe, beside Wysocki\'s figures',
    '',
    'Rafael J. Wysocki, "swsusp: use less memory during resume" (LKML, April 2006): "this patch allows',
    'us to save as many as approx. 90000 page copyings and 90000 (at least - probably twice as many,',
    'because it\'s an x86_64 box) page allocations for an image of approx. 100000 of pages". Here, from',
    'the rows above: eat-unsafe copies every page and allocates until each has a safe page; one-shot',
    'allocates what the image needs once and loads an allocated original location in place.',
    '',
    '| | image pages | copies, eat-unsafe | copies, one-shot | copies saved | allocations, eat-unsafe | allocations, one-shot | allocations saved | cycles |',
    '|---|---|---|---|---|---|---|---|---|',
    ...wysockiRows(rows),
    '| Wysocki 2006, x86_64 | ≈ 100,000 | | | ≈ 90,000 | | | ≥ 90,000 | |',
  );
  return `${lines.join('\n')}\n`;
}
