/**
 * The `hiberlab` command line. Each subcommand is a thin layer over the library
 * (src/index.ts): parse options, run, print a summary table or one JSON report.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, existsSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_RAM_BYTES, DEFAULT_WARMUP_MS, DEFAULT_WORKLOAD, hibernate, resume, runCycle,
  type CycleReport, type HibernateOptions, type HibernateResult, type ResumeResult,
} from '../src/cycle.ts';
import { BadOptionError, defaultText, kebab, type GivenOptions, type OptionSpec, type OptionSpecs } from '../src/declarations.ts';
import { errorCode, HiberlabError } from '../src/errors.ts';
import { MachineError } from '../src/machine/errors.ts';
import { formatInspection, inspectImage } from '../src/image/index.ts';
import { MAX_RAM_BYTES, MIN_RAM_BYTES } from '../src/machine/machine.ts';
import { chooseWasmTiers, WASM_TIERS, type WasmTiers } from '../src/machine/v86.ts';
import { parseSize } from '../src/machine/workload.ts';
import { RESTORE_STRATEGIES, SAVE_STRATEGIES } from '../src/strategies.ts';
import {
  DEFAULT_FAULTS_DET_WARMUP_MS, DEFAULT_FAULTS_WORKLOAD, DEFAULT_FAULTS_PRIME_MS, DEFAULT_FAULTS_WARMUP_MS, runFaults, type FaultRunReport,
} from '../src/mmu/fault-run.ts';
import type { FaultTraceEvent } from '../src/mmu/faults.ts';
import { POLICY_NAMES } from '../src/mmu/policies/index.ts';
import { describeError } from './errors.ts';
import { junitXml, type JunitCase } from './junit.ts';
import { compareJson, compareTable, writeCompare } from './compare-output.ts';
import { faultHeatMapSvg, memoryMapSvg, writePicture } from './pictures.ts';
import { SingleBar, Presets } from 'cli-progress';
import { runCompare } from '../src/compare.ts';
import { cycleSummary, faultsSummary, hibernateSummary, resumeSummary, wrap } from './report.ts';

/** Exit codes of `hiberlab resume`. */
export const RESUME_EXIT = { resumed: 0, failed: 1, 'no-image': 2, refused: 3 } as const;

function ramOption(text: string): number {
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (bytes < MIN_RAM_BYTES || bytes > MAX_RAM_BYTES) throw new InvalidArgumentError(`RAM must be between 16M and 2G-128K (${MAX_RAM_BYTES} bytes), got ${text}`);
  return bytes;
}

function sizeOption(text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function intOption(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError(`expected a whole number from 0 to 4294967295, got ${text}`);
  return n;
}

const ramOpt = () => new Option('--ram <size>', 'guest RAM (16M .. 2G-128K)').argParser(ramOption).default(DEFAULT_RAM_BYTES, '64M');
const jsonOpt = () => new Option('--json', 'print one JSON report on stdout');
const verboseOpt = () => new Option('-v, --verbose', 'print every number, not only the summary');
const consoleOpt = () => new Option('--console', 'echo the guest console on stderr');
const lowmemOpt = () => new Option('--lowmem <size>', 'boot the kernels with only this much RAM mapped for good (lowmem=); the frames above are highmem and hold the cache').argParser(sizeOption);
const reserveOpt = () => new Option('--reserve <size>', 'boot the kernels with a reserved region of this size (reserve=; the reserved restore needs it)').argParser(sizeOption);
const kernelOpt = () => new Option('--kernel <file>', 'boot this multiboot kernel (it implements the hypercall ABI, docs/ABI.md) instead of the built-in guest');
const detOpt = () => new Option('--deterministic', 'virtual clock from the instruction counter, JIT off: identical runs');
const largeOpt = () => new Option('--large-pages', 'map guest RAM with 4 MiB pages');
const tiersOpt = (def: WasmTiers) =>
  new Option('--wasm-tiers <tiers>', "V8's compilers for v86: liftoff-only (a short run starts at full speed) or tier-up (TurboFan too: after a few seconds the fault path runs faster)").choices(WASM_TIERS).default(def);

interface CommonFlags {
  ram: number;
  kernel?: string;
  reserve?: number;
  lowmem?: number;
  json?: boolean;
  verbose?: boolean;
  console?: boolean;
  deterministic?: boolean;
  largePages?: boolean;
}

interface HibernateFlags extends CommonFlags {
  workload?: string;
  seed: number;
  save: string;
  image?: string;
  warmup: number;
}

/**
 * One flag per option any strategy of `kind` declares (--kebab-name), its help naming
 * the strategies that take it. Flags are only given to commander as strings; which
 * strategy's options they are is decided after parsing (strategyOptions).
 */
function addStrategyOptions(cmd: Command, strategies: ReadonlyMap<string, { name: string; options: OptionSpecs }>): Command {
  const byName = new Map<string, { spec: OptionSpec; owners: string[] }>();
  for (const s of strategies.values()) {
    for (const [name, spec] of Object.entries(s.options)) {
      const entry = byName.get(name);
      if (entry) entry.owners.push(s.name);
      else byName.set(name, { spec, owners: [s.name] });
    }
  }
  for (const [name, { spec, owners }] of byName) {
    const def = defaultText(spec);
    const help = `${owners.join(', ')}: ${spec.help}${spec.kind === 'integer' && spec.unit ? ` (${spec.unit})` : ''}${def !== undefined ? ` (default ${def})` : ''}`;
    if (spec.kind === 'boolean' && spec.default === true) cmd.addOption(new Option(`--no-${kebab(name)}`, `${owners.join(', ')}: ${spec.help} (on unless --no-${kebab(name)})`));
    else if (spec.kind === 'boolean') cmd.addOption(new Option(`--${kebab(name)}`, help));
    else cmd.addOption(new Option(`--${kebab(name)} <n>`, help).argParser(intOption));
  }
  return cmd;
}

/** For a comparison of several strategies: the flags that strategy `name` declares (the others are some other strategy's). */
function strategyOptionsFor(cmd: Command, strategies: ReadonlyMap<string, { name: string; options: OptionSpecs }>, name: string): GivenOptions {
  const out: Record<string, number | boolean> = {};
  for (const option of Object.keys(strategies.get(name)?.options ?? {})) {
    if (cmd.getOptionValueSource(option) === 'cli') out[option] = cmd.getOptionValue(option) as number | boolean;
  }
  return out;
}

/** The comparison's progress: a bar on a terminal (cli-progress), a line per cell otherwise; nothing with --json unless stderr is a terminal. */
function compareProgress(json: boolean | undefined): (done: number, total: number, what: string) => void {
  if (json && !process.stderr.isTTY) return () => {};
  if (!process.stderr.isTTY) return (done, total, what) => process.stderr.write(`compare: ${done}/${total} ${what}\n`);
  const bar = new SingleBar({ format: 'compare [{bar}] {value}/{total} {what}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return (done, total, what) => {
    if (!started) {
      bar.start(total, 0, { what });
      started = true;
    }
    bar.update(done, { what });
    if (done === total) bar.stop();
  };
}

/** The options of strategy `chosen` from the parsed flags; a flag of another strategy's is refused. */
function strategyOptions(cmd: Command, strategies: ReadonlyMap<string, { name: string; options: OptionSpecs }>, chosen: string, kind: 'save' | 'restore'): GivenOptions {
  const mine = strategies.get(chosen)?.options ?? {};
  const out: Record<string, number | boolean> = {};
  const all = new Set<string>();
  for (const s of strategies.values()) for (const name of Object.keys(s.options)) all.add(name);
  for (const name of all) {
    if (cmd.getOptionValueSource(name) !== 'cli') continue;
    if (!(name in mine)) {
      const owners = [...strategies.values()].filter((s) => name in s.options).map((s) => s.name);
      throw new BadOptionError(`${kind} strategy ${chosen}`, name, `--${kebab(name)} is an option of ${owners.join(', ')}, not of ${chosen}`);
    }
    out[name] = cmd.getOptionValue(name) as number | boolean;
  }
  return out;
}

function hibernateOptions(flags: HibernateFlags, cmd: Command): HibernateOptions {
  return {
    ramBytes: flags.ram,
    workload: flags.workload,
    kernel: flags.kernel,
    reserveBytes: flags.reserve,
    lowmemBytes: flags.lowmem,
    seed: flags.seed,
    save: flags.save,
    saveOptions: strategyOptions(cmd, SAVE_STRATEGIES, flags.save, 'save'),
    imagePath: flags.image,
    warmupMs: flags.warmup,
    deterministic: flags.deterministic,
    largePages: flags.largePages,
    progress: !flags.json || process.stderr.isTTY,
    onConsole: consoleEcho(flags),
  };
}

function consoleEcho(flags: { console?: boolean }): ((line: string) => void) | undefined {
  return flags.console ? (line) => process.stderr.write(`guest| ${line}`) : undefined;
}

function addHibernateOptions(cmd: Command): Command {
  cmd
    .addOption(ramOpt())
    .option('--workload <spec>', `workloads: KIND[:SIZE][@RATE],... with KIND churn|stream|cache|idle (default ${DEFAULT_WORKLOAD}; idle with --kernel)`)
    .option('--seed <n>', 'seed of the workload data', intOption, 1)
    .addOption(kernelOpt())
    .addOption(reserveOpt())
    .addOption(lowmemOpt())
    .addOption(new Option('--save <name>', 'save strategy').choices([...SAVE_STRATEGIES.keys()]).default('swsusp'))
    .option('--warmup <ms>', 'guest milliseconds the workloads run before hibernating', intOption, DEFAULT_WARMUP_MS);
  addStrategyOptions(cmd, SAVE_STRATEGIES);
  return cmd.addOption(detOpt()).addOption(largeOpt()).addOption(tiersOpt('liftoff-only')).addOption(jsonOpt()).addOption(verboseOpt()).addOption(consoleOpt());
}

/**
 * Runs a command's body; with --json, an error (a refused hibernation, a dead guest, a
 * bad option) still prints one JSON report on stdout, with the verdict, the error's
 * code, message and facts, and the guest's console tail when there is one. Without
 * --json the error goes to stderr as before.
 */
async function reporting(command: string, json: boolean | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (!json) throw err;
    const e = err instanceof Error ? err : new Error(String(err));
    const consoleTail = err instanceof MachineError && err.consoleTail ? err.consoleTail : undefined;
    const error = { code: errorCode(err), message: e.message, facts: err instanceof HiberlabError ? err.facts : {}, ...(consoleTail ? { consoleTail } : {}) };
    print(true, { command, verdict: 'fail', failures: [e.message], error }, () => '');
    process.exitCode = 1;
  }
}

function print(json: boolean | undefined, data: unknown, text: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(data, (k, v) => (k === 'frameMap' || v instanceof Uint8Array || v instanceof Uint32Array ? undefined : v), 2)}\n`);
  else process.stdout.write(`${text()}\n`);
}

/** A cycle as a JUnit test case: a failure when the oracle failed it, the summary as its output. */
export function cycleJunitCase(report: CycleReport, name: string, timeMs: number): JunitCase {
  return {
    name, classname: 'hiberlab.cycle', timeMs, output: cycleSummary(report),
    ...(report.verdict === 'pass' ? {} : { failure: { message: report.failures[0] ?? 'the cycle failed', details: `${report.failures.join('\n')}\n--- guest console (last lines) ---\n${report.consoleTail}` } }),
  };
}

/** A HibernateResult without the bulky parts (oracle RAM, console, trace). */
function hibernateJson(h: HibernateResult): unknown {
  return { imagePath: h.imagePath, buildId: h.buildId, ramBytes: h.ramBytes, workload: h.workload, seed: h.seed, save: h.save, phasesMs: h.phasesMs };
}

function resumeJson(r: ResumeResult): unknown {
  const { console: _c, guest: _g, ...rest } = r;
  return rest;
}

export function buildProgram(): Command {
  const program = new Command('hiberlab')
    .description('A laboratory for hibernation (suspend-to-disk) on emulated x86: real guest kernel, swsusp-style save and restore, verified against an oracle.')
    .showHelpAfterError()
    .exitOverride()
    // Before the command's first machine: V8 fixes its compilers when it compiles v86.
    .hook('preAction', (_program, command) => {
      const tiers = command.opts().wasmTiers as WasmTiers | undefined;
      if (tiers) chooseWasmTiers(tiers);
    });

  const cycle = addHibernateOptions(
    program
      .command('cycle')
      .description('boot → warm-up → hibernate → power off → resume → verify against the oracle (exit 0 only on pass)'),
  )
    .addOption(new Option('--restore <name>', 'restore strategy').choices([...RESTORE_STRATEGIES.keys()]).default('bitmap-pbe'))
    .option('--image <file>', 'swap device file (created if missing; kept; default: a temporary file, removed afterwards)');
  addStrategyOptions(cycle, RESTORE_STRATEGIES);
  cycle.option('--junit <file>', 'also write the result as JUnit XML (for CI systems that read it)');
  cycle.option('--picture <file>', 'draw the memory map of the cycle: every frame\'s owner at the atomic point and what became of it (SVG, or PNG if the name ends in .png)');
  cycle.action((flags: HibernateFlags & { restore: string; junit?: string; picture?: string }, cmd: Command) =>
    reporting('cycle', flags.json, async () => {
      const started = performance.now();
      const name = `${flags.save} → ${flags.restore}, ${flags.ram / (1 << 20)} MiB, ${flags.workload ?? (flags.kernel ? 'idle' : DEFAULT_WORKLOAD)}, seed ${flags.seed}`;
      let report: CycleReport;
      try {
        report = await runCycle({ ...hibernateOptions(flags, cmd), restore: flags.restore, restoreOptions: strategyOptions(cmd, RESTORE_STRATEGIES, flags.restore, 'restore') });
      } catch (err) {
        if (flags.junit) writeFileSync(flags.junit, junitXml('hiberlab cycle', [{ name, classname: 'hiberlab.cycle', timeMs: performance.now() - started, error: { type: errorCode(err), message: err instanceof Error ? err.message : String(err), details: err instanceof MachineError ? err.consoleTail : undefined } }]));
        throw err;
      }
      if (flags.junit) writeFileSync(flags.junit, junitXml('hiberlab cycle', [cycleJunitCase(report, name, performance.now() - started)]));
      if (flags.picture && report.frameMap) await writePicture(flags.picture, memoryMapSvg(report.frameMap, `${name}: ${report.verdict.toUpperCase()}`));
      print(flags.json, report, () => cycleSummary(report, flags.verbose));
      process.exitCode = report.verdict === 'pass' ? 0 : 1;
    }),
  );

  addHibernateOptions(program.command('hibernate').description('boot, warm up, save the image to the swap device and power off'))
    .requiredOption('--image <file>', 'swap device file (created if missing)')
    .action((flags: HibernateFlags, cmd: Command) =>
      reporting('hibernate', flags.json, async () => {
        const h = await hibernate(hibernateOptions(flags, cmd));
        print(flags.json, hibernateJson(h), () => hibernateSummary(h, flags.verbose));
      }),
    );

  const resumeCmd = program
    .command('resume')
    .description('boot the boot kernel and resume the image on the swap device; exit 0 resumed and verified, 2 no image (normal boot), 3 image refused, 1 otherwise')
    .requiredOption('--image <file>', 'swap device file')
    .addOption(new Option('--ram <size>', 'guest RAM (default: the size the image records; another size is refused)').argParser(ramOption))
    .option('--workload <spec>', "the boot kernel's command line, as the hibernated kernel's: it creates only the caches read at boot (cache:SIZE@boot), which compare-on-load finds equal (default: none)")
    .option('--seed <n>', "the boot kernel's seed, as the hibernated kernel's", intOption)
    .addOption(kernelOpt())
    .addOption(reserveOpt())
    .addOption(lowmemOpt())
    .addOption(new Option('--restore <name>', 'restore strategy').choices([...RESTORE_STRATEGIES.keys()]).default('bitmap-pbe'));
  addStrategyOptions(resumeCmd, RESTORE_STRATEGIES);
  resumeCmd
    .addOption(detOpt())
    .addOption(largeOpt())
    .addOption(tiersOpt('liftoff-only'))
    .addOption(jsonOpt())
    .addOption(verboseOpt())
    .addOption(consoleOpt())
    .action((flags: Omit<CommonFlags, 'ram' | 'workload' | 'seed'> & { ram?: number; image: string; restore: string; workload?: string; seed?: number }, cmd: Command) =>
      reporting('resume', flags.json, async () => {
        if (!existsSync(flags.image)) throw new HiberlabError('NO_DEVICE', `no such swap device: ${flags.image}`, { path: flags.image });
        const r = await resume({
          imagePath: flags.image, ramBytes: flags.ram, workload: flags.workload, seed: flags.seed, kernel: flags.kernel, reserveBytes: flags.reserve, lowmemBytes: flags.lowmem, restore: flags.restore, restoreOptions: strategyOptions(cmd, RESTORE_STRATEGIES, flags.restore, 'restore'),
          deterministic: flags.deterministic, largePages: flags.largePages,
          progress: !flags.json || process.stderr.isTTY, onConsole: consoleEcho(flags),
        });
        const verified = r.status === 'resumed' && r.check?.verdict === 'pass';
        const verdict = verified ? 'pass' : 'fail';
        print(flags.json, { ...(resumeJson(r) as object), verdict, verified }, () => resumeSummary(r, flags.verbose));
        process.exitCode = r.status === 'resumed' ? (verified ? RESUME_EXIT.resumed : RESUME_EXIT.failed) : RESUME_EXIT[r.status];
      }),
    );

  const compare = program
    .command('compare')
    .description('one cycle for every save × restore × workload × RAM × seed, judged by the oracle: a table, JSON, CSV and pictures (exit 0 only if every cell passed)')
    .option('--save <names>', 'save strategies, comma-separated', 'swsusp')
    .option('--restore <names>', 'restore strategies, comma-separated', 'bitmap-pbe')
    .option('--workload <specs>', `workloads, separated by ';' (each a KIND[:SIZE][@RATE],... list)`, DEFAULT_WORKLOAD)
    .option('--ram <sizes>', 'RAM sizes, comma-separated', '64M')
    .option('--seed <seeds>', 'seeds, comma-separated', '1')
    .option('--out <dir>', 'where the JSON, CSV and pictures go', 'hiberlab-compare')
    .option('--png', 'also write every picture as PNG')
    .option('--junit <file>', 'also write the cells as JUnit XML')
    .option('--warmup <ms>', 'guest milliseconds the workloads run before hibernating', intOption, DEFAULT_WARMUP_MS)
    .addOption(kernelOpt());
  addStrategyOptions(compare, SAVE_STRATEGIES);
  addStrategyOptions(compare, RESTORE_STRATEGIES);
  compare
    .addOption(detOpt())
    .addOption(largeOpt())
    .addOption(tiersOpt('liftoff-only'))
    .addOption(jsonOpt())
    .action((flags: { save: string; restore: string; workload: string; ram: string; seed: string; out: string; png?: boolean; junit?: string; warmup: number; kernel?: string; deterministic?: boolean; largePages?: boolean; json?: boolean }, cmd: Command) =>
      reporting('compare', flags.json, async () => {
        const list = (text: string, sep = ',') => text.split(sep).map((x) => x.trim()).filter(Boolean);
        const saves = list(flags.save);
        const restores = list(flags.restore);
        for (const s of saves) if (!SAVE_STRATEGIES.has(s)) throw new HiberlabError('UNKNOWN_STRATEGY', `unknown save strategy "${s}" (known: ${[...SAVE_STRATEGIES.keys()].join(', ')})`, { name: s });
        for (const r of restores) if (!RESTORE_STRATEGIES.has(r)) throw new HiberlabError('UNKNOWN_STRATEGY', `unknown restore strategy "${r}" (known: ${[...RESTORE_STRATEGIES.keys()].join(', ')})`, { name: r });
        const axes = {
          saves, restores, workloads: list(flags.workload, ';'),
          ramBytes: list(flags.ram).map((r) => ramOption(r)), seeds: list(flags.seed).map((x) => intOption(x)),
        };
        const saveOptions = Object.fromEntries(saves.map((s) => [s, strategyOptionsFor(cmd, SAVE_STRATEGIES, s)]));
        const restoreOptions = Object.fromEntries(restores.map((r) => [r, strategyOptionsFor(cmd, RESTORE_STRATEGIES, r)]));
        const bar = compareProgress(flags.json);
        const cells = await runCompare(axes, {
          saveOptions, restoreOptions, warmupMs: flags.warmup, kernel: flags.kernel, deterministic: flags.deterministic, largePages: flags.largePages,
          onCell: (done, total, next) => bar(done, total, next ? `${next.save}→${next.restore} ${next.ramBytes >> 20}M ${next.workload} seed ${next.seed}` : 'done'),
        });
        const files = await writeCompare(flags.out, cells, { png: flags.png });
        if (flags.junit) {
          writeFileSync(flags.junit, junitXml('hiberlab compare', cells.map((c) => {
            const name = `${c.save} → ${c.restore}, ${c.ramBytes >> 20} MiB, ${c.workload}, seed ${c.seed}`;
            return c.report ? cycleJunitCase(c.report, name, c.wallMs) : { name, classname: 'hiberlab.compare', timeMs: c.wallMs, error: { type: c.error!.code, message: c.error!.message } };
          })));
        }
        const failed = cells.filter((c) => c.verdict === 'fail').length;
        const verdict = failed ? 'fail' : 'pass';
        print(flags.json, { command: 'compare', verdict, cells: JSON.parse(compareJson(cells)), files }, () =>
          [compareTable(cells, process.stdout.columns || 80), ...wrap('', `${cells.length} cells: ${cells.length - failed} passed, ${failed} failed; wrote ${files.length} files into ${flags.out}`.split(' '), ' ', process.stdout.columns || 80, '  ')].join('\n'));
        process.exitCode = failed ? 1 : 0;
      }),
    );

  program
    .command('faults')
    .description('run a workload under write protection with a fault policy; report faults, faults per page and per second, and the slowdown and host time per fault against the same guest unprotected (exit 0 when the workloads verified their data)')
    .addOption(ramOpt())
    .option('--workload <spec>', 'workloads: KIND[:SIZE][@RATE],... with KIND churn|stream|cache|idle', DEFAULT_FAULTS_WORKLOAD)
    .option('--seed <n>', 'seed of the workload data', intOption, 1)
    .addOption(new Option('--policy <name>', 'fault policy').choices([...POLICY_NAMES]).default('dirty-track'))
    .option('--duration <ms>', 'guest milliseconds measured under protection (and as long unprotected right before, for the baseline)', intOption, 1000)
    .option('--interval <ms>', 'guest milliseconds between re-protections of the written pages (0 = protect once)', intOption, 100)
    .option('--warmup <ms>', `guest milliseconds the workloads run unprotected before the measured runs, so that v86's JIT and V8 have compiled them (default ${DEFAULT_FAULTS_WARMUP_MS}, ${DEFAULT_FAULTS_DET_WARMUP_MS} with --deterministic)`, intOption)
    .option('--prime <ms>', `at most this many guest milliseconds of protecting the pages in rounds (policy count) right after boot, until v86's JIT has compiled the faulting code; 0 = none (default ${DEFAULT_FAULTS_PRIME_MS})`, intOption)
    .addOption(new Option('--scope <what>', 'pages to protect: every protectable page in use, or the workload buffers').choices(['all', 'workload']).default('all'))
    .option('--pool <pages>', 'copy-before-write reserve pool in frames (default: one per protected page, at most half the free frames)', intOption)
    .option('--no-baseline', 'skip the unprotected run (no slowdown)')
    .option('--trace <file>', 'write every fault as a JSON line: guest time (ms since boot), PFN, EIP, CR2, error code, task, decision, instructions')
    .option('--heatmap <file>', 'draw the faults as a heat map of PFN against guest time (SVG, or PNG if the name ends in .png)')
    .addOption(detOpt())
    .addOption(largeOpt())
    .addOption(tiersOpt('tier-up'))
    .addOption(jsonOpt())
    .addOption(verboseOpt())
    .addOption(consoleOpt())
    .action((flags: CommonFlags & { workload: string; seed: number; policy: string; duration: number; interval: number; warmup?: number; prime?: number; scope: 'all' | 'workload'; pool?: number; baseline: boolean; trace?: string; heatmap?: string }) =>
      reporting('faults', flags.json, async () => {
        const file = flags.trace ? new TraceFile(flags.trace) : undefined;
        const points: Array<readonly [number, number]> = [];
        const trace = file || flags.heatmap ? { write: (e: FaultTraceEvent) => { file?.write(e); if (flags.heatmap) points.push([e.timeMs, e.pfn]); }, close: () => file?.close() } : undefined;
        let report: FaultRunReport;
        try {
          report = await runFaults({
            ramBytes: flags.ram, workload: flags.workload, seed: flags.seed, policy: flags.policy, durationMs: flags.duration,
            intervalMs: flags.interval, warmupMs: flags.warmup, primeMs: flags.prime, scope: flags.scope, poolPages: flags.pool, baseline: flags.baseline,
            deterministic: flags.deterministic, largePages: flags.largePages, onFault: trace ? (e) => trace.write(e) : undefined,
            onConsole: consoleEcho(flags),
          });
        } finally {
          trace?.close();
        }
        if (flags.heatmap) await writePicture(flags.heatmap, faultHeatMapSvg(`${report.config.policy} faults, ${report.config.workload}, ${report.config.ramBytes >> 20} MiB`, points));
        print(flags.json, report, () => faultsSummary(report, flags.verbose));
        process.exitCode = report.verify.every((v) => v.badWords === 0) ? 0 : 1;
      }),
    );

  program
    .command('inspect')
    .description('show an image: signature, header, page counts, checksum status')
    .argument('<file>', 'swap device file')
    .addOption(jsonOpt())
    .action((file: string, flags: { json?: boolean }) =>
      reporting('inspect', flags.json, async () => {
        const info = inspectImage(file);
        print(flags.json, info, () => formatInspection(info));
      }),
    );

  return program;
}

/** Fault trace as JSON lines, written in chunks (the faults arrive inside the guest's #PF). */
class TraceFile {
  private readonly fd: number;
  private lines: string[] = [];
  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }
  write(e: FaultTraceEvent): void {
    this.lines.push(JSON.stringify({ t: Math.round(e.timeMs * 1000) / 1000, pfn: e.pfn, eip: e.eip, cr2: e.cr2, err: e.errorCode, task: e.taskId, decision: e.decision, instructions: e.instructions }));
    if (this.lines.length >= 4096) this.flush();
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
  private flush(): void {
    if (this.lines.length) writeSync(this.fd, `${this.lines.join('\n')}\n`);
    this.lines = [];
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // Commander said what is wrong on stderr; a script that asked for JSON still gets one report.
      if (argv.includes('--json')) print(true, { command: argv[2] ?? '', verdict: 'fail', failures: [e.message ?? e.code], error: { code: 'BAD_ARGUMENTS', message: e.message ?? e.code, facts: {} } }, () => '');
      return e.exitCode ?? 1;
    }
    process.stderr.write(`hiberlab: ${describeError(err)}\n`);
    return 1;
  }
}

