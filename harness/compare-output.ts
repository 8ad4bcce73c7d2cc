/**
 * What `hiberlab compare` writes: a table that fits the terminal, JSON, CSV (one row per
 * cell, every number; the strategies' statistics as stats.<name>), and pictures (the
 * downtime of every cell, the largest image per save strategy and RAM size, the pre-copy
 * rounds where a strategy had them, the memory map of every cell). Column names follow QEMU's migration statistics and CRIU's stats where
 * they mean the same thing (docs/REPORT.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import type { CompareCell } from '../src/compare.ts';
import type { PrecopyRound } from '../src/declarations.ts';
import { type Bar, barChartSvg, lineChartSvg, memoryMapSvg, writePicture } from './pictures.ts';

/** One column: its header (the QEMU/CRIU name where there is one), its value, and how keen we are to show it. */
interface Column {
  readonly header: string;
  readonly value: (c: CompareCell) => string | number | undefined;
  /** Lower is kept longer when the table must shrink to fit. */
  readonly priority: number;
}

const mib = (bytes: number) => bytes / (1 << 20);
const r1 = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 10) / 10);

/** The cells' numbers: shared by the table, the CSV and the JSON. */
export const COLUMNS: readonly Column[] = [
  { header: 'save', value: (c) => c.save, priority: 0 },
  { header: 'restore', value: (c) => c.restore, priority: 1 },
  { header: 'workload', value: (c) => c.workload, priority: 0 },
  { header: 'ram_mib', value: (c) => mib(c.ramBytes), priority: 0 },
  { header: 'seed', value: (c) => c.seed, priority: 4 },
  { header: 'verdict', value: (c) => c.verdict, priority: 0 },
  { header: 'pages_written', value: (c) => c.report && c.report.save.pageBytesWritten / 4096, priority: 3 },
  { header: 'image_mib', value: (c) => c.report && r1(mib(c.report.save.imageBytes)), priority: 2 },
  { header: 'downtime_ms', value: (c) => c.report?.save.downtime.ms, priority: 0 },
  { header: 'atomic_copy_pages', value: (c) => c.report?.save.atomicCopyPages, priority: 2 },
  { header: 'dirty_sync_count', value: (c) => rounds(c)?.length, priority: 5 },
  { header: 'pages_restored_in_place', value: (c) => c.report?.restore?.inPlacePages, priority: 3 },
  { header: 'pages_restore_skipped', value: (c) => c.report?.restore?.unchangedPages, priority: 4 },
  { header: 'pbes', value: (c) => c.report?.restore?.pbes, priority: 3 },
  { header: 'write_ms', value: (c) => c.report?.save.writeMs, priority: 4 },
  { header: 'read_ms', value: (c) => c.report?.restore && r1((c.report.restore.phasesMs.plan ?? 0) + (c.report.restore.phasesMs.load ?? 0)), priority: 4 },
  { header: 'total_time_ms', value: (c) => r1(c.wallMs), priority: 5 },
  { header: 'error', value: (c) => c.error?.code ?? (c.report?.verdict === 'fail' ? 'ORACLE' : undefined), priority: 1 },
];

function rounds(c: CompareCell): readonly PrecopyRound[] | undefined {
  const r = c.report?.save.stats.rounds;
  return Array.isArray(r) ? (r as PrecopyRound[]) : undefined;
}

/** The table, with the least important columns left out until it fits `width`. */
export function compareTable(cells: readonly CompareCell[], width = 80): string {
  const byPriority = [...COLUMNS].sort((a, b) => b.priority - a.priority);
  let shown = [...COLUMNS];
  for (;;) {
    const t = new Table({ head: shown.map((c) => c.header), style: { head: [], border: [], compact: true } });
    for (const cell of cells) t.push(shown.map((col) => String(col.value(cell) ?? '-')));
    const text = t.toString();
    const widest = Math.max(...text.split('\n').map((l) => l.length));
    if (widest <= width || shown.length <= 3) return text;
    const drop = byPriority.find((c) => shown.includes(c));
    shown = shown.filter((c) => c !== drop);
  }
}

/** CSV: every column, then every statistic any strategy reported (stats.<name>, rounds as the dirty counts joined by '/'). */
export function compareCsv(cells: readonly CompareCell[]): string {
  const statNames = [...new Set(cells.flatMap((c) => Object.keys(c.report?.save.stats ?? {}).map((k) => `save.stats.${k}`).concat(Object.keys(c.report?.restore?.stats ?? {}).map((k) => `restore.stats.${k}`))))];
  const rows = cells.map((c) => [
    ...COLUMNS.map((col) => col.value(c) ?? ''),
    ...statNames.map((name) => {
      const [side, , key] = name.split('.') as ['save' | 'restore', string, string];
      const v = side === 'save' ? c.report?.save.stats[key] : c.report?.restore?.stats[key];
      if (Array.isArray(v)) return (v as PrecopyRound[]).map((r) => r.dirtyAfter).join('/');
      return v === undefined ? '' : String(v);
    }),
  ]);
  return stringify([[...COLUMNS.map((c) => c.header), ...statNames], ...rows]);
}

/** The cells as JSON, without the per-frame arrays. */
export function compareJson(cells: readonly CompareCell[]): string {
  return JSON.stringify(cells, (k, v) => (k === 'frameMap' || v instanceof Uint8Array || v instanceof Uint32Array ? undefined : v), 2);
}

/** A short name for a cell in pictures and file names. */
export function cellLabel(c: CompareCell): string {
  return `${c.save}→${c.restore} ${mib(c.ramBytes)}M ${c.workload} s${c.seed}`;
}

/**
 * One bar per save strategy and RAM size: the largest image among its cells (MiB), with
 * its share of RAM and the workload that made it. A strategy whose cells all failed at
 * that size gets a failed bar of its largest attempt (0 when none wrote an image).
 */
export function largestImageBars(cells: readonly CompareCell[]): Bar[] {
  const groups = new Map<string, CompareCell[]>();
  for (const c of cells) {
    const key = `${c.save} ${mib(c.ramBytes)}M`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups].map(([label, group]) => {
    const passed = group.filter((c) => c.verdict === 'pass');
    const size = (c: CompareCell) => c.report?.save.imageBytes ?? 0;
    const largest = (passed.length ? passed : group).reduce((a, b) => (size(b) > size(a) ? b : a));
    const share = Math.round((size(largest) / largest.ramBytes) * 1000) / 10;
    return { label, value: r1(mib(size(largest)))!, unit: `MiB, ${share} % of RAM (${largest.workload})`, failed: !passed.length };
  });
}

/** Writes compare.json, compare.csv and the pictures into `dir`; returns the files written. */
export async function writeCompare(dir: string, cells: readonly CompareCell[], options: { png?: boolean } = {}): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    files.push(join(dir, name));
  };
  const picture = async (name: string, svgText: string) => {
    await writePicture(join(dir, `${name}.svg`), svgText);
    files.push(join(dir, `${name}.svg`));
    if (options.png) {
      await writePicture(join(dir, `${name}.png`), svgText);
      files.push(join(dir, `${name}.png`));
    }
  };
  write('compare.json', compareJson(cells));
  write('compare.csv', compareCsv(cells));
  await picture('downtime', barChartSvg('Downtime per cell (freeze → running again or image committed)', cells.map((c) => ({ label: cellLabel(c), value: c.report?.save.downtime.ms ?? 0, unit: 'ms', failed: c.verdict === 'fail' }))));
  await picture('image', barChartSvg('Largest image per save strategy and RAM size (of the cells that passed)', largestImageBars(cells)));
  const withRounds = cells.filter((c) => (rounds(c)?.length ?? 0) > 0);
  if (withRounds.length) {
    await picture('rounds', lineChartSvg('Pre-copy rounds: pages dirty when each round ended', 'round', 'dirty pages', withRounds.map((c) => ({ label: cellLabel(c), points: rounds(c)!.map((r) => [r.round, r.dirtyAfter] as const) }))));
  }
  for (const [i, c] of cells.entries()) {
    if (c.report?.frameMap) await picture(`map-${i + 1}`, memoryMapSvg(c.report.frameMap, `${cellLabel(c)}: ${c.verdict.toUpperCase()}`));
  }
  return files;
}
