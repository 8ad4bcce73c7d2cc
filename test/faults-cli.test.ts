import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { tempSwapPath } from './helpers.ts';

const hiberlab = (...args: string[]) => execa('node', ['bin/hiberlab.mjs', ...args], { reject: false, env: { FORCE_COLOR: '0' } });

describe('hiberlab faults', () => {
  it('--json reports faults, faults per page and per second and the slowdown; --trace writes one JSON line per fault', async () => {
    const trace = tempSwapPath('trace');
    const r = await hiberlab('faults', '--ram', '32M', '--workload', 'churn:1M@1000,stream:1M@1000', '--duration', '100', '--warmup', '30', '--interval', '50', '--json', '--trace', trace);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // faults measures the fault path, which runs fastest with TurboFan: it chooses tier-up.
    expect(report.config).toMatchObject({ policy: 'dirty-track', durationMs: 100, intervalMs: 50, scope: 'all', wasmTiers: "tier-up (V8's default)" });
    expect(report.rounds).toBe(2);
    expect(report.faults.total).toBeGreaterThan(0);
    expect(report.faults.handled).toBe(report.faults.total);
    expect(report.faults.perGuestSecond).toBeGreaterThan(0);
    expect(report.slowdown).toBeGreaterThan(0);
    expect(report.verify.map((v: { badWords: number }) => v.badWords)).toEqual([0, 0]);
    const lines = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(report.faults.total);
    expect(Object.keys(lines[0])).toEqual(['t', 'pfn', 'eip', 'cr2', 'err', 'task', 'decision', 'instructions']);
  });

  it('prints a summary that fits 80 columns, the details with -v', async () => {
    const r = await hiberlab('faults', '--ram', '32M', '--workload', 'stream:1M@1000', '--duration', '50', '--warmup', '20', '--policy', 'count', '--no-baseline');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PASS  count, 32 MiB: \d+ faults on \d+ pages in 50 guest ms$/m);
    for (const line of r.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(r.stdout).not.toContain('slowdown');
    const v = await hiberlab('faults', '--ram', '32M', '--workload', 'stream:1M@1000', '--duration', '50', '--warmup', '20', '--policy', 'count', '--no-baseline', '-v', '--wasm-tiers', 'liftoff-only');
    for (const row of ['per page', 'tlb', 'task 2: ok', 'wasm     V8 compiled v86 with liftoff only (set by hiberlab)']) expect(v.stdout).toContain(row);
  });

  it('--policy deny stops at the first write with the page, EIP and task, and exits 1', async () => {
    const r = await hiberlab('faults', '--ram', '32M', '--workload', 'stream:1M@1000', '--duration', '50', '--warmup', '20', '--policy', 'deny', '--scope', 'workload');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/denied write to a protected page: PFN 0x[0-9a-f]+ \(address 0x[0-9a-f]{8}, protected as "faults:deny"\) at EIP 0x[0-9a-f]{8} by task 2 \(stream2\)/);
  });
});
