/**
 * Bringing one's own guest: a minimal kernel (test/fixtures/minimal-guest/main.c, linked
 * with a few of hiberlab's guest/ files as a user would from the package) is built here
 * with the machine's gcc and hibernated through `hiberlab/vitest` and the CLI; and the
 * CLI's JUnit report.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCycle } from 'hiberlab/vitest';
import { GUEST_CFLAGS, GUEST_DIR, GUEST_DIR_PLACEHOLDER, GUEST_LDFLAGS } from '../src/machine/guest-image.ts';
import { MiB, tempSwapPath } from './helpers.ts';

/** The guest/ files a kernel of one's own links against: boot, console, allocator, paging, TSS, the saved context and the trampoline. */
const SUPPORT = ['entry.S', 'swsusp.S', 'gdt.c', 'alloc.c', 'paging.c', 'string.c', 'console.c', 'cmdline.c'];

let dir: string;
let kernel: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hiberlab-own-kernel-'));
  const cflags = GUEST_CFLAGS.map((f) => f.replace(GUEST_DIR_PLACEHOLDER, GUEST_DIR));
  const sources = [...SUPPORT.map((f) => join(GUEST_DIR, f)), new URL('./fixtures/minimal-guest/main.c', import.meta.url).pathname];
  const objects: string[] = [];
  for (const [i, src] of sources.entries()) {
    const obj = join(dir, `${i}.o`);
    await execa('gcc', [...cflags, `-I${GUEST_DIR}`, '-c', src, '-o', obj]);
    objects.push(obj);
  }
  kernel = join(dir, 'minimal.elf');
  await execa('ld', [...GUEST_LDFLAGS.map((f) => (f === 'linker.ld' ? join(GUEST_DIR, 'linker.ld') : f)), '-o', kernel, ...objects]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hiberlab = (...args: string[]) => execa('node', ['bin/hiberlab.mjs', ...args], { reject: false, env: { FORCE_COLOR: '0' } });

describe('a kernel of one\'s own', () => {
  it('boots instead of the built-in guest, hibernates and resumes, and passes the oracle (its own data checked)', async () => {
    const report = await runCycle({ kernel, ramBytes: 32 * MiB, imagePath: tempSwapPath('own') });
    expect(report).toPassOracle();
    expect(report.consoleTail).toContain('minimal: resumed, generation 1');
    expect(report.verify).toEqual([{ taskId: -1, workload: 'cache', wordsChecked: 1024, badWords: 0, firstBad: undefined }]);
    expect(report.buildId).toBe((await import('node:crypto')).createHash('sha256').update(readFileSync(kernel)).digest('hex'));
  });

  it('the CLI boots it with --kernel and writes a JUnit report; a refused save is a JUnit error', async () => {
    const junit = join(dir, 'cycle.xml');
    const r = await hiberlab('cycle', '--kernel', kernel, '--ram', '32M', '--junit', junit);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PASS  swsusp → bitmap-pbe, 32 MiB/);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="hiberlab" tests="1" failures="0" errors="0" time="[\d.]+">/);
    expect(xml).toMatch(/<testcase classname="hiberlab.cycle" name="swsusp → bitmap-pbe, 32 MiB, idle, seed 1" time="[\d.]+">/);
    expect(xml).not.toContain('<failure');
    const refused = join(dir, 'refused.xml');
    const f = await hiberlab('cycle', '--ram', '32M', '--workload', 'stream:18M', '--junit', refused);
    expect(f.exitCode).toBe(1);
    const bad = readFileSync(refused, 'utf8');
    expect(bad).toContain('errors="1"');
    expect(bad).toMatch(/<error message="cannot hibernate: \d+ saveable pages[^"]*" type="HIBERNATION_REFUSED">/);
  });
});
