import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTable, largestImageBars } from '../harness/compare-output.ts';
import { faultHeatMapSvg, memoryMapSvg } from '../harness/pictures.ts';
import { OWNERS } from '../src/abi.ts';
import type { CompareCell } from '../src/compare.ts';
import { wordsOfFrames } from '../src/pages/page-set.ts';

const dir = mkdtempSync(join(tmpdir(), 'hiberlab-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hiberlab = (...args: string[]) => execa('node', ['bin/hiberlab.mjs', ...args], { reject: false, env: { FORCE_COLOR: '0' } });

describe('hiberlab compare', () => {
  it('two save strategies × two workloads × two RAM sizes: a table within 80 columns, JSON, CSV and SVGs, every cell judged', async () => {
    const out = join(dir, 'run');
    const r = await hiberlab('compare', '--save', 'swsusp,cow', '--workload', 'churn:1M@500,cache:1M;stream:1M', '--ram', '32M,48M', '--out', out, '--warmup', '20');
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines.slice(-2).join(' ').replace(/ +/g, ' ')).toBe(`8 cells: 8 passed, 0 failed; wrote 12 files into ${out}`);
    expect(r.stderr).toMatch(/compare: 8\/8 done/);
    const cells = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(cells).toHaveLength(8);
    expect(cells.map((c: { save: string; ramBytes: number; verdict: string }) => `${c.save} ${c.ramBytes >> 20} ${c.verdict}`)).toEqual([
      'swsusp 32 pass', 'swsusp 48 pass', 'swsusp 32 pass', 'swsusp 48 pass', 'cow 32 pass', 'cow 48 pass', 'cow 32 pass', 'cow 48 pass',
    ]);
    const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(9);
    expect(csv[0]).toMatch(/^save,restore,workload,ram_mib,seed,verdict,pages_written,image_mib,downtime_ms,/);
    expect(csv[0]).toContain('save.stats.savedEarly');
    for (const name of ['downtime.svg', 'image.svg', ...Array.from({ length: 8 }, (_, i) => `map-${i + 1}.svg`)]) expect(existsSync(join(out, name)), name).toBe(true);
    // The memory map of a cycle shows frames loaded in place and frames loaded through PBEs.
    const map = readFileSync(join(out, 'map-1.svg'), 'utf8');
    expect(map).toContain('fill="#2e7d32"');
    expect(map).toContain('fill="#f28e2b"');
  });

  it('a cell that fails makes the whole comparison fail, with its error in the report', async () => {
    const out = join(dir, 'fail');
    const r = await hiberlab('compare', '--save', 'swsusp', '--workload', 'stream:18M', '--ram', '32M', '--out', out, '--json');
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.verdict).toBe('fail');
    expect(report.cells[0].error.code).toBe('HIBERNATION_REFUSED');
  });
});

describe('the pictures and the table', () => {
  it('the memory map colours each frame by its owner, and by whether it was loaded in place or through a PBE', () => {
    const owners = new Uint8Array(256);
    owners.fill(OWNERS.KERNEL.value, 0, 64);
    owners.fill(OWNERS.CACHE.value, 64, 128);
    const saved = wordsOfFrames(Array.from({ length: 128 }, (_, i) => i), 256);
    const inPlace = wordsOfFrames(Array.from({ length: 64 }, (_, i) => 64 + i), 256);
    const svg = memoryMapSvg({ frameCount: 256, owners, saved, inPlace }, 'test');
    // 128 frames a row, 6 px cells: row 0 is kernel through PBEs (x 60..444), row... frames 64-127 the cache in place.
    expect(svg).toContain('<rect x="60" y="40" width="384" height="3" fill="#4e79a7"/>');
    expect(svg).toContain('<rect x="444" y="40" width="384" height="3" fill="#edc948"/>');
    expect(svg).toContain('<rect x="60" y="43" width="384" height="3" fill="#f28e2b"/>');
    expect(svg).toContain('<rect x="444" y="43" width="384" height="3" fill="#2e7d32"/>');
  });

  it('the fault heat map counts faults per PFN range and time slice', () => {
    // Two faults on PFN 0x100 at the start, one on PFN 0x13f at the end: 2 rows of 32 PFNs, 2 slices.
    const svg = faultHeatMapSvg('t', [[0, 0x100], [1, 0x100], [10, 0x13f]], 2, 2);
    expect(svg).toContain('darkest: 2 faults');
    expect(svg.match(/<rect x="\d+" y="\d+" width="\d+" height="\d+" fill="rgb/g)).toHaveLength(2);
  });

  it('the largest image is drawn per save strategy and RAM size, from the cells that passed', () => {
    const cell = (save: string, ram: number, workload: string, imageMiB: number, verdict: 'pass' | 'fail') =>
      ({ save, restore: 'bitmap-pbe', workload, ramBytes: ram << 20, seed: 1, verdict, wallMs: 1, report: { save: { imageBytes: imageMiB << 20 } } }) as unknown as CompareCell;
    const bars = largestImageBars([
      cell('swsusp', 32, 'a', 4, 'pass'), cell('swsusp', 32, 'b', 8, 'pass'), cell('swsusp', 32, 'c', 16, 'fail'),
      cell('swsusp', 64, 'a', 16, 'pass'), cell('cow', 32, 'a', 2, 'fail'), cell('cow', 32, 'b', 3, 'fail'),
    ]);
    expect(bars).toEqual([
      { label: 'swsusp 32M', value: 8, unit: 'MiB, 25 % of RAM (b)', failed: false },
      { label: 'swsusp 64M', value: 16, unit: 'MiB, 25 % of RAM (a)', failed: false },
      { label: 'cow 32M', value: 3, unit: 'MiB, 9.4 % of RAM (b)', failed: true },
    ]);
  });

  it('the table leaves out the least important columns until it fits', () => {
    const cell = { save: 'swsusp', restore: 'bitmap-pbe', workload: 'churn:1M', ramBytes: 32 << 20, seed: 1, verdict: 'pass', wallMs: 1234 } as CompareCell;
    const wide = compareTable([cell], 400);
    const narrow = compareTable([cell], 60);
    expect(wide).toContain('total_time_ms');
    expect(narrow).not.toContain('total_time_ms');
    for (const line of narrow.split('\n')) expect(line.length).toBeLessThanOrEqual(60);
    expect(narrow).toContain('verdict');
  });
});
