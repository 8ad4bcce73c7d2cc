/**
 * The whole `hiberlab cycle` command, as a CI job runs it: a fresh Node process, from
 * its start to its exit, with the report's phases beside it. Two ways to start it: the
 * CLI's TypeScript through tsx's loader (what a checkout's bin runs after an edit) and
 * the package's built JavaScript (dist/, what an installed package runs, and a
 * checkout's bin while dist/ was built from its sources; built by `npm run build`,
 * skipped when absent). "process" is what the phases do not cover: Node's start, loading the
 * modules, v86's construction before the first boot, the report's printing and exit.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { median } from './faults.ts';
import { settle } from './settle.ts';

const run = promisify(execFile);

export interface CycleTimeRow {
  readonly ram: string;
  readonly workload: string;
  readonly route: 'checkout (tsx)' | 'package (dist)';
  readonly runs: number;
  /** Median wall time of the whole command, ms. */
  readonly wallMs: number;
  readonly bestMs: number;
  /** The phases of the median run (ms): first boot, warm-up, save, oracle capture, resume boot, restore, verify, the rest. */
  readonly phases: Readonly<Record<string, number>>;
  readonly verdict: string;
}

const SOURCE = new URL('../harness/cli.ts', import.meta.url);
const DIST = new URL('../dist/harness/cli.js', import.meta.url);

/** A child script's first statement: `const <binding> = await import(...)` of the TypeScript (through tsx) or the built JavaScript. */
function importIn(route: CycleTimeRow['route'], binding: string, source: URL, dist: URL): string {
  return route === 'checkout (tsx)' ? `(await import('tsx/esm/api')).register(); const ${binding} = await import(${JSON.stringify(source.href)});` : `const ${binding} = await import(${JSON.stringify(dist.href)});`;
}

function command(route: CycleTimeRow['route'], args: string[]): [string, string[]] {
  const load = importIn(route, '{ main }', SOURCE, DIST);
  return [process.execPath, ['--input-type=module', '-e', `${load} process.exitCode = await main(['node', 'hiberlab', ...${JSON.stringify(args)}]);`]];
}

const sumOf = (p: Record<string, number>, prefix: string, except: string[] = []) =>
  Object.entries(p).filter(([k]) => k.startsWith(prefix) && !except.includes(k)).reduce((a, [, v]) => a + v, 0);

/** Groups the report's phases into what a reader compares. */
function phasesOf(report: { phasesMs: Record<string, number> }, wallMs: number): Record<string, number> {
  const p = report.phasesMs;
  const out: Record<string, number> = {
    'first boot': p['hibernate.boot'] ?? 0,
    'warm-up': p['hibernate.warmup'] ?? 0,
    save: sumOf(p, 'save.', ['save.oracle']),
    'oracle capture': p['save.oracle'] ?? 0,
    'resume boot': p['resume.boot'] ?? 0,
    restore: (p['resume.validate'] ?? 0) + (p['resume.restore'] ?? 0) + (p['resume.trampoline'] ?? 0) + (p['resume.compare'] ?? 0),
    verify: p['resume.verify'] ?? 0,
  };
  out.process = Math.max(0, wallMs - Object.values(out).reduce((a, b) => a + b, 0));
  return out;
}

export async function benchCycleTime(ram: string, workload: string, reps: number): Promise<CycleTimeRow[]> {
  const rows: CycleTimeRow[] = [];
  const routes: CycleTimeRow['route'][] = ['checkout (tsx)'];
  if (existsSync(DIST)) routes.push('package (dist)');
  for (const route of routes) {
    const runs: Array<{ wallMs: number; phases: Record<string, number>; verdict: string }> = [];
    for (let i = 0; i < reps; i++) {
      await settle();
      const [file, args] = command(route, ['cycle', '--ram', ram, '--workload', workload, '--json']);
      const t = performance.now();
      const { stdout } = await run(file, args, { maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
      const wallMs = performance.now() - t;
      const report = JSON.parse(stdout) as { verdict: string; phasesMs: Record<string, number> };
      runs.push({ wallMs, phases: phasesOf(report, wallMs), verdict: report.verdict });
    }
    runs.sort((a, b) => a.wallMs - b.wallMs);
    const middle = runs[Math.floor(runs.length / 2)]!;
    rows.push({ ram, workload, route, runs: reps, wallMs: middle.wallMs, bestMs: runs[0]!.wallMs, phases: middle.phases, verdict: runs.every((r) => r.verdict === 'pass') ? 'pass' : 'fail' });
  }
  return rows;
}

/** Ten cycles in one process, as a test file runs them: what the first pays, what each later one pays. */
export interface CyclesInProcessRow {
  readonly ram: string;
  readonly workload: string;
  readonly route: CycleTimeRow['route'];
  readonly cycles: number;
  /** Wall time of each runCycle, ms, in order. */
  readonly cycleMs: readonly number[];
  /** v86's JIT modules V8 compiled, and the ones taken from earlier compiles, per cycle. */
  readonly jitCompiled: readonly number[];
  readonly jitReused: readonly number[];
  readonly verdict: string;
}

const SOURCE_INDEX = new URL('../src/index.ts', import.meta.url);
const DIST_INDEX = new URL('../dist/src/index.js', import.meta.url);

/** `cycles` runCycle calls in one fresh process (the package's JavaScript when built). */
export async function benchCyclesInProcess(ram: string, workload: string, cycles: number): Promise<CyclesInProcessRow> {
  const route: CycleTimeRow['route'] = existsSync(DIST_INDEX) ? 'package (dist)' : 'checkout (tsx)';
  const script = `${importIn(route, 'lib', SOURCE_INDEX, DIST_INDEX)}
    const out = { cycleMs: [], jitCompiled: [], jitReused: [], verdicts: [] };
    const ramBytes = lib.parseSize(${JSON.stringify(ram)});
    for (let i = 0; i < ${cycles}; i++) {
      const before = lib.jitModuleCounts();
      const t = performance.now();
      const r = await lib.runCycle({ ramBytes, workload: ${JSON.stringify(workload)} });
      out.cycleMs.push(performance.now() - t);
      const after = lib.jitModuleCounts();
      out.jitCompiled.push(after.compiled - before.compiled);
      out.jitReused.push(after.reused - before.reused);
      out.verdicts.push(r.verdict);
    }
    process.stdout.write(JSON.stringify(out));`;
  await settle();
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } });
  const out = JSON.parse(stdout) as { cycleMs: number[]; jitCompiled: number[]; jitReused: number[]; verdicts: string[] };
  return { ram, workload, route, cycles, cycleMs: out.cycleMs, jitCompiled: out.jitCompiled, jitReused: out.jitReused, verdict: out.verdicts.every((v) => v === 'pass') ? 'pass' : 'fail' };
}

const laterOf = <T>(xs: readonly T[]) => xs.slice(1);

function inProcessCells(r: CyclesInProcessRow): string[] {
  const later = laterOf(r.cycleMs);
  return [
    r.ram, r.route, String(r.cycles), `${r.cycleMs[0]!.toFixed(0)} ms`, `${median(later).toFixed(0)} ms`, `${Math.min(...later).toFixed(0)} ms`,
    `${r.jitCompiled[0]} / ${r.jitReused[0]}`, `${median(laterOf(r.jitCompiled))} / ${median(laterOf(r.jitReused))}`, r.verdict,
  ];
}
const IN_PROCESS_HEAD = ['RAM', 'route', 'cycles', 'first cycle', 'later cycles (median)', 'later (best)', 'JIT modules compiled / reused, first', 'later (median)', 'cycles'];

const PHASES = ['first boot', 'warm-up', 'save', 'oracle capture', 'resume boot', 'restore', 'verify', 'process'];

export function renderCycleTime(rows: readonly CycleTimeRow[], inProcess: readonly CyclesInProcessRow[] = []): string {
  const t = new Table({ head: ['RAM', 'route', 'median', 'best', ...PHASES, 'cycles'], style: { head: [], border: [] } });
  for (const r of rows) t.push([r.ram, r.route, `${r.wallMs.toFixed(0)} ms`, `${r.bestMs.toFixed(0)} ms`, ...PHASES.map((p) => (r.phases[p] ?? 0).toFixed(0)), r.verdict]);
  if (!inProcess.length) return t.toString();
  const u = new Table({ head: IN_PROCESS_HEAD, style: { head: [], border: [] } });
  for (const r of inProcess) u.push(inProcessCells(r));
  return `${t.toString()}\n${u.toString()}`;
}

export function cycleTimeMarkdown(rows: readonly CycleTimeRow[], inProcess: readonly CyclesInProcessRow[] = []): string {
  const lines = [
    '## The whole `hiberlab cycle` command',
    '',
    'A fresh Node process per run, from its start to its exit, `--json`: what a CI job pays. Median',
    'of the runs (best beside it); the phases are those of the median run, from its report: first',
    'boot (v86 constructed, the guest booted to READY), warm-up, save (freeze to power-off, without',
    "the oracle), the oracle's capture, the boot kernel's boot, restore (what validation left,",
    'plan, load, trampoline, the oracle\'s comparison), the workloads\' verification; "process" is',
    "the rest: Node's start, loading the modules, constructing v86, printing, exit. Routes: the",
    "checkout's bin (TypeScript through tsx) and the package's built JavaScript (dist/). The",
    "target of the CI issue: at most 1.5 s at 128 MiB.",
    '',
    `| RAM | workload | route | runs | median | best | ${PHASES.join(' | ')} | cycles |`,
    `|---|---|---|---|---|---|${PHASES.map(() => '---').join('|')}|---|`,
  ];
  for (const r of rows) {
    lines.push(`| ${r.ram} | \`${r.workload}\` | ${r.route} | ${r.runs} | ${r.wallMs.toFixed(0)} ms | ${r.bestMs.toFixed(0)} ms | ${PHASES.map((p) => `${(r.phases[p] ?? 0).toFixed(0)}`).join(' | ')} | ${r.verdict} |`);
  }
  if (inProcess.length) {
    lines.push(
      '',
      'Cycles in one process, as a test file runs them (`runCycle` ten times, the default',
      'workload): the first cycle pays for compiling v86 and its JIT\'s modules; a later one takes',
      'the modules compiled before from the same bytes (`jitModule`, docs/V86.md).',
      '',
      `| ${IN_PROCESS_HEAD.join(' | ')} |`,
      `|${IN_PROCESS_HEAD.map(() => '---').join('|')}|`,
    );
    for (const r of inProcess) lines.push(`| ${inProcessCells(r).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
