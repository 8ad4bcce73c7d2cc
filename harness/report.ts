/**
 * Human summaries of cycle, hibernate and resume results (the JSON reports are the
 * objects themselves; their schema is in docs/REPORT.md).
 */
import Table from 'cli-table3';
import type { CycleReport, HibernateResult, ResumeResult } from '../src/cycle.ts';
import type { SaveReport } from '../src/save/strategy.ts';
import type { RestoreReport } from '../src/restore/strategy.ts';
import type { FaultRunReport } from '../src/mmu/fault-run.ts';
import { hex } from '../src/units.ts';

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes % (1024 * 1024) ? 1 : 0)} MiB`;
const ms = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);

function table(rows: Array<[string, string | number]>): string {
  const t = new Table({ style: { head: [], border: [] } });
  for (const [k, v] of rows) t.push({ [k]: String(v) });
  return t.toString();
}

function saveRows(s: SaveReport): Array<[string, string | number]> {
  return [
    ['save strategy', s.strategy],
    ['pages saved', s.pagesSaved],
    ['image bytes', `${s.imageBytes} (${mib(s.imageBytes)})`],
    ['atomic-copy pages', s.atomicCopyPages],
    ['frames taken for the snapshot', s.snapshotFrames],
    ['cache pages dropped', s.cachePagesDropped],
    ['tasks frozen', s.tasksFrozen],
    ['RAM frames used / free at the atomic point', `${s.memory.usedAtAtomic} / ${s.memory.freeAtAtomic} of ${s.memory.frames}`],
    ['downtime (freeze → running again or image committed)', `${ms(s.downtime.ms)}, ${s.downtime.instructions} guest instructions to the atomic point`],
    ['largest image possible', `${(s.largestImageFraction * 100).toFixed(1)} % of RAM`],
    ...(s.live
      ? ([
          ['faults (pages faulted)', `${s.live.faults} (${s.live.pagesFaulted})`],
          ['atomic copy: faulted + unprotectable pages', `${s.live.flaggedPages} + ${s.live.unprotectablePages}`],
          ['rounds (pages written, dirty after)', s.live.rounds.map((r) => `${r.round}: ${r.pagesWritten}/${r.dirtyAfter}`).join(', ') + ` — ${s.live.stopReason}`],
          ...(s.live.savedEarly !== undefined ? [['saved early (pool exhausted)', s.live.savedEarly] as [string, number]] : []),
        ] as Array<[string, string | number]>)
      : []),
  ];
}

function restoreRows(r: RestoreReport | undefined): Array<[string, string | number]> {
  if (!r) return [];
  return [
    ['restore strategy', r.strategy],
    ['pages loaded', r.pagesLoaded],
    ['in-place loads', r.inPlacePages],
    ['PBEs (copied by the trampoline)', r.pbes],
    ['frames taken by the restore', r.snapshotFrames],
  ];
}

function phaseRows(phases: Readonly<Record<string, number>>): Array<[string, string]> {
  return Object.entries(phases).map(([k, v]) => [`time: ${k}`, ms(v)]);
}

export function cycleSummary(r: CycleReport): string {
  const head = r.verdict === 'pass' ? 'PASS' : 'FAIL';
  const rows: Array<[string, string | number]> = [
    ['verdict', head],
    ['RAM', mib(r.config.ramBytes)],
    ['workload', `${r.config.workload} (seed ${r.config.seed})`],
    ['mode', `${r.config.deterministic ? 'deterministic' : 'fast'}${r.config.largePages ? ', 4 MiB pages' : ''}`],
    ...saveRows(r.save),
    ...restoreRows(r.restore),
    ['oracle', `${r.oracle.pagesCompared} pages compared with the ${r.oracle.against}, ${r.oracle.differingPages.length} differ`],
    ['tasks verified', r.verify.map((v) => `task ${v.taskId}: ${v.badWords ? `${v.badWords} bad` : 'ok'} (${v.wordsChecked} words)`).join(', ') || 'none'],
    ...phaseRows(r.phasesMs),
    ...validationRows(r.validationScan, r.phasesMs['resume.validate']),
  ];
  const lines = [table(rows)];
  for (const f of r.failures) lines.push(`failure: ${f}`);
  for (const d of r.oracle.differingPages.slice(0, 20)) lines.push(`  differs: PFN ${hex(d.pfn)} (${d.owner}) at byte ${d.offset}: expected ${hex(d.expected)}, got ${hex(d.actual)}`);
  return lines.join('\n');
}

export function hibernateSummary(h: HibernateResult): string {
  return table([
    ['swap device', h.imagePath],
    ['RAM', mib(h.ramBytes)],
    ['workload', `${h.workload} (seed ${h.seed})`],
    ...saveRows(h.save),
    ...phaseRows(h.phasesMs),
    ...phaseRows(Object.fromEntries(Object.entries(h.save.phasesMs).map(([k, v]) => [`save.${k}`, v]))),
  ]);
}

export function resumeSummary(r: ResumeResult): string {
  if (r.status !== 'resumed') return `${r.status === 'no-image' ? 'no image to resume: booted normally' : 'image refused'}${r.reason ? `: ${r.reason}` : ''}`;
  return table([
    ['status', `resumed (generation ${r.generation})`],
    ...restoreRows(r.restore),
    ['check', `${r.oracle?.pagesCompared ?? 0} pages compared with the ${r.oracle?.against}, ${r.oracle?.differingPages.length ?? 0} differ`],
    ['tasks verified', r.verify.map((v) => `task ${v.taskId}: ${v.badWords ? `${v.badWords} bad` : 'ok'}`).join(', ') || 'none'],
    ...phaseRows(r.phasesMs),
    ...validationRows(r.validationScan, r.phasesMs.validate),
  ]);
}

/** The page scan begins on the CRC thread while the boot kernel boots: its share, and what the boot kernel waited for. */
function validationRows(scan: { chunks: number; crcThreadChunks: number } | undefined, waited: number | undefined): Array<[string, string]> {
  if (!scan) return [];
  return [['validation', `${scan.chunks} chunks checked, ${scan.crcThreadChunks} of them on the CRC thread (begun with the boot); the boot kernel waited ${ms(waited ?? 0)}`]];
}

export function faultsSummary(r: FaultRunReport): string {
  const f = r.faults;
  const c = r.config;
  const ok = r.verify.every((v) => v.badWords === 0);
  const rate = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));
  const rows: Array<[string, string | number]> = [
    ['verdict', ok ? 'PASS (workloads verified their data under protection)' : 'FAIL (a workload found bad data)'],
    ['RAM', mib(c.ramBytes)],
    ['workload', `${c.workload} (seed ${c.seed})`],
    ['mode', `${c.deterministic ? 'deterministic' : 'fast'}${c.largePages ? ', 4 MiB pages' : ''}`],
    ['policy', c.policy],
    ['protection', `${r.protectedPages} pages (${c.scope}), ${r.forbiddenPages} never protectable, ${r.splits} 4 MiB pages split`],
    ['rounds', `${r.rounds} (${c.intervalMs ? `re-protected every ${c.intervalMs} ms` : 'protected once'}) over ${c.durationMs} guest ms`],
    ['faults', `${f.total} (${f.handled} handled, ${f.notMine} not mine)`],
    ['pages faulted', `${f.pagesFaulted}, ${f.meanPerPage.toFixed(2)} faults per page on average, at most ${f.maxPerPage}`],
    ['faults per page', Object.entries(f.histogram).map(([k, v]) => `${k}: ${v} pages`).join(', ') || '-'],
    ['faults per second', `${rate(f.perGuestSecond)}/s of guest time, ${rate(f.perWallSecond)}/s of host time`],
    ['TLB', `${r.tlb.fullFlushes} full flushes, ${r.tlb.pagesInvalidated} single-page invalidations in ${r.tlb.batches} batches`],
    ['protected run', `${ms(r.protectedRun.wallMs)} host, ${r.protectedRun.steps} workload steps, ${r.protectedRun.instructions} instructions`],
  ];
  if (r.baselineRun) {
    rows.push(['unprotected run', `${ms(r.baselineRun.wallMs)} host, ${r.baselineRun.steps} workload steps, ${r.baselineRun.instructions} instructions`]);
    rows.push(['guest slowdown', `${r.slowdown!.toFixed(2)}× (workload steps per host second, unprotected / protected)`]);
  }
  rows.push(['tasks verified', r.verify.map((v) => `task ${v.taskId}: ${v.badWords ? `${v.badWords} bad` : 'ok'}`).join(', ') || 'none']);
  const lines = [table(rows)];
  if (f.topPages.length) lines.push(`most-faulted pages: ${f.topPages.map((p) => `${hex(p.pfn)} (${p.owner}) ${p.faults}`).join(', ')}`);
  return lines.join('\n');
}
