import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { SwapDevice } from '../src/image/index.ts';
import { MiB, sha256File, tempSwapPath } from './helpers.ts';

const hiberlab = (...args: string[]) => execa('node', ['bin/hiberlab.mjs', ...args], { reject: false, env: { FORCE_COLOR: '0' } });

describe('the hiberlab CLI', () => {
  it('cycle --json prints one report with verdict pass and exits 0', async () => {
    const r = await hiberlab('cycle', '--ram', '32M', '--workload', 'churn:1M@500,stream:1M', '--json');
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.verdict).toBe('pass');
    expect(report.oracle.memory.differingPages).toEqual([]);
    expect(report.oracle.frames.missingPages).toEqual([]);
    expect(report.config.ramBytes).toBe(32 * MiB);
    expect(report.save.strategy).toBe('swsusp');
    expect(report.restore.strategy).toBe('bitmap-pbe');
    expect(report.verify).toHaveLength(2);
    // A short command runs v86 with Liftoff's code only (docs/V86.md).
    expect(report.config.wasmTiers).toBe('liftoff only (set by hiberlab)');
  });

  it('cycle without --json prints a summary that fits 80 columns; -v adds the details', async () => {
    const r = await hiberlab('cycle', '--ram', '32M', '--workload', 'stream:1M');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^PASS  swsusp → bitmap-pbe, 32 MiB: \d+ pages \([\d.]+ MiB\), downtime [\d.]+ ms$/);
    expect(r.stdout).toMatch(/^Wrote \d+ kbytes in [\d.]+ seconds \([\d.]+ MB\/s\)$/m);
    expect(r.stdout).toMatch(/^Read \d+ kbytes in [\d.]+ seconds \([\d.]+ MB\/s\)$/m);
    expect(r.stdout).toMatch(/^save +freeze [\d.]+, prepare/m);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines.length).toBeLessThanOrEqual(16);
    const v = await hiberlab('cycle', '--ram', '32M', '--workload', 'stream:1M', '-v', '--wasm-tiers', 'tier-up');
    expect(v.exitCode).toBe(0);
    for (const row of ['save strategy swsusp', 'restore strategy bitmap-pbe', 'bitmapPages:', 'task 2 (stream): ok', "wasm     V8 compiled v86 with tier-up (V8's default)"]) expect(v.stdout).toContain(row);
  });

  it('hibernate and resume in separate processes; resume exits 0, then 2 when the image was consumed', async () => {
    const image = tempSwapPath('cli');
    const h = await hiberlab('hibernate', '--image', image, '--ram', '32M', '--workload', 'churn:1M@500', '--json');
    expect(h.exitCode).toBe(0);
    expect(JSON.parse(h.stdout).save.pagesSaved).toBeGreaterThan(0);
    const insp = await hiberlab('inspect', image, '--json');
    expect(insp.exitCode).toBe(0);
    // Without --ram the boot kernel gets the RAM size the image records.
    const r = await hiberlab('resume', '--image', image, '--json');
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('resumed');
    expect(report.verified).toBe(true);
    expect(report.check.against).toBe('image');
    expect(report.check.verdict).toBe('pass');
    const again = await hiberlab('resume', '--image', image, '--ram', '32M');
    expect(again.exitCode).toBe(2);
    expect(again.stdout).toMatch(/no image to resume/);
  });

  it('resume exits 3 with the reason for a refused image, leaving the file as it was', async () => {
    const image = tempSwapPath('cli-refused');
    expect((await hiberlab('hibernate', '--image', image, '--ram', '32M', '--workload', 'idle')).exitCode).toBe(0);
    const before = sha256File(image);
    const r = await hiberlab('resume', '--image', image, '--ram', '48M');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/image refused: [\s\S]*32 MiB[\s\S]*48 MiB/);
    expect(sha256File(image)).toBe(before);
  });

  it('with --json every command prints one report, also when the hibernation is refused or the arguments are bad', async () => {
    const image = tempSwapPath('cli-json');
    const h = await hiberlab('hibernate', '--image', image, '--ram', '32M', '--workload', 'stream:18M', '--json');
    expect(h.exitCode).toBe(1);
    const refused = JSON.parse(h.stdout);
    expect(refused).toMatchObject({ command: 'hibernate', verdict: 'fail', error: { code: 'HIBERNATION_REFUSED' } });
    expect(refused.error.message).toMatch(/^cannot hibernate: \d+ saveable pages/);
    expect(refused.error.facts.needed).toBeGreaterThan(refused.error.facts.free);
    const c = await hiberlab('cycle', '--save', 'wp-full', '--pool', '64', '--json');
    expect(c.exitCode).toBe(1);
    expect(JSON.parse(c.stdout)).toMatchObject({ command: 'cycle', verdict: 'fail', error: { code: 'BAD_OPTION', facts: { option: 'pool' } } });
    const a = await hiberlab('cycle', '--ram', '3G', '--json');
    expect(a.exitCode).toBe(1);
    expect(JSON.parse(a.stdout)).toMatchObject({ command: 'cycle', verdict: 'fail', error: { code: 'BAD_ARGUMENTS' } });
  });

  it('inspect reports an empty swap device', async () => {
    const p = tempSwapPath('empty');
    SwapDevice.create(p, 4 * MiB).close();
    const r = await hiberlab('inspect', p, '--json');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).signature.kind).toBe('swap');
  });

  it('bad options get a clear error and exit 1', async () => {
    const r = await hiberlab('cycle', '--ram', '3G');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/RAM must be between 16M and 2G-128K/);
    const w = await hiberlab('cycle', '--workload', 'bogus:1M');
    expect(w.exitCode).toBe(1);
    expect(w.stderr).toMatch(/unknown workload kind "bogus"/);
    // Strategy flags come from the strategies' declarations and belong to them.
    const o = await hiberlab('cycle', '--save', 'wp-full', '--pool', '64');
    expect(o.exitCode).toBe(1);
    expect(o.stderr).toMatch(/save strategy wp-full: --pool is an option of cow, not of wp-full/);
  });
});
