/**
 * The `hiberlab` command line. Each subcommand is a thin layer over the library
 * (src/index.ts): parse options, run, print a summary table or one JSON report.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import {
  DEFAULT_RAM_BYTES, DEFAULT_WARMUP_MS, DEFAULT_WORKLOAD, hibernate, resume, runCycle,
  type CycleReport, type HibernateOptions, type HibernateResult, type ResumeResult,
} from '../src/cycle.ts';
import { BadOptionError, defaultText, kebab, type GivenOptions, type OptionSpec, type OptionSpecs } from '../src/declarations.ts';
import { HiberlabError } from '../src/errors.ts';
import { formatInspection, inspectImage } from '../src/image/index.ts';
import { MAX_RAM_BYTES, MIN_RAM_BYTES } from '../src/machine/machine.ts';
import { parseSize } from '../src/machine/workload.ts';
import { RESTORE_STRATEGIES, SAVE_STRATEGIES } from '../src/strategies.ts';
import {
  DEFAULT_FAULTS_DET_WARMUP_MS, DEFAULT_FAULTS_WORKLOAD, DEFAULT_FAULTS_PRIME_MS, DEFAULT_FAULTS_WARMUP_MS, runFaults, type FaultRunReport,
} from '../src/mmu/fault-run.ts';
import type { FaultTraceEvent } from '../src/mmu/faults.ts';
import { POLICY_NAMES } from '../src/mmu/policies/index.ts';
import { describeError } from './errors.ts';
import { cycleSummary, faultsSummary, hibernateSummary, resumeSummary } from './report.ts';

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

function intOption(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError(`expected a whole number from 0 to 4294967295, got ${text}`);
  return n;
}

const ramOpt = () => new Option('--ram <size>', 'guest RAM (16M .. 2G-128K)').argParser(ramOption).default(DEFAULT_RAM_BYTES, '64M');
const jsonOpt = () => new Option('--json', 'print one JSON report on stdout');
const verboseOpt = () => new Option('-v, --verbose', 'print every number, not only the summary');
const consoleOpt = () => new Option('--console', 'echo the guest console on stderr');
const detOpt = () => new Option('--deterministic', 'virtual clock from the instruction counter, JIT off: identical runs');
const largeOpt = () => new Option('--large-pages', 'map guest RAM with 4 MiB pages');

interface CommonFlags {
  ram: number;
  json?: boolean;
  verbose?: boolean;
  console?: boolean;
  deterministic?: boolean;
  largePages?: boolean;
}

interface HibernateFlags extends CommonFlags {
  workload: string;
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
    if (spec.kind === 'boolean') cmd.addOption(new Option(`--${kebab(name)}`, help));
    else cmd.addOption(new Option(`--${kebab(name)} <n>`, help).argParser(intOption));
  }
  return cmd;
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

function consoleEcho(flags: CommonFlags): ((line: string) => void) | undefined {
  return flags.console ? (line) => process.stderr.write(`guest| ${line}`) : undefined;
}

function addHibernateOptions(cmd: Command): Command {
  cmd
    .addOption(ramOpt())
    .option('--workload <spec>', 'workloads: KIND[:SIZE][@RATE],... with KIND churn|stream|cache|idle', DEFAULT_WORKLOAD)
    .option('--seed <n>', 'seed of the workload data', intOption, 1)
    .addOption(new Option('--save <name>', 'save strategy').choices([...SAVE_STRATEGIES.keys()]).default('swsusp'))
    .option('--warmup <ms>', 'guest milliseconds the workloads run before hibernating', intOption, DEFAULT_WARMUP_MS);
  addStrategyOptions(cmd, SAVE_STRATEGIES);
  return cmd.addOption(detOpt()).addOption(largeOpt()).addOption(jsonOpt()).addOption(verboseOpt()).addOption(consoleOpt());
}

function print(json: boolean | undefined, data: unknown, text: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(data, (_k, v) => (v instanceof Uint8Array || v instanceof Uint32Array ? undefined : v), 2)}\n`);
  else process.stdout.write(`${text()}\n`);
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
    .exitOverride();

  const cycle = addHibernateOptions(
    program
      .command('cycle')
      .description('boot → warm-up → hibernate → power off → resume → verify against the oracle (exit 0 only on pass)'),
  )
    .addOption(new Option('--restore <name>', 'restore strategy').choices([...RESTORE_STRATEGIES.keys()]).default('bitmap-pbe'))
    .option('--image <file>', 'swap device file (created if missing; kept; default: a temporary file, removed afterwards)');
  addStrategyOptions(cycle, RESTORE_STRATEGIES);
  cycle.action(async (flags: HibernateFlags & { restore: string }, cmd: Command) => {
    const report: CycleReport = await runCycle({ ...hibernateOptions(flags, cmd), restore: flags.restore, restoreOptions: strategyOptions(cmd, RESTORE_STRATEGIES, flags.restore, 'restore') });
    print(flags.json, report, () => cycleSummary(report, flags.verbose));
    process.exitCode = report.verdict === 'pass' ? 0 : 1;
  });

  addHibernateOptions(program.command('hibernate').description('boot, warm up, save the image to the swap device and power off'))
    .requiredOption('--image <file>', 'swap device file (created if missing)')
    .action(async (flags: HibernateFlags, cmd: Command) => {
      const h = await hibernate(hibernateOptions(flags, cmd));
      print(flags.json, hibernateJson(h), () => hibernateSummary(h, flags.verbose));
    });

  const resumeCmd = program
    .command('resume')
    .description('boot the boot kernel and resume the image on the swap device; exit 0 resumed and verified, 2 no image (normal boot), 3 image refused, 1 otherwise')
    .requiredOption('--image <file>', 'swap device file')
    .addOption(ramOpt())
    .addOption(new Option('--restore <name>', 'restore strategy').choices([...RESTORE_STRATEGIES.keys()]).default('bitmap-pbe'));
  addStrategyOptions(resumeCmd, RESTORE_STRATEGIES);
  resumeCmd
    .addOption(detOpt())
    .addOption(largeOpt())
    .addOption(jsonOpt())
    .addOption(verboseOpt())
    .addOption(consoleOpt())
    .action(async (flags: CommonFlags & { image: string; restore: string }, cmd: Command) => {
      if (!existsSync(flags.image)) throw new HiberlabError('NO_DEVICE', `no such swap device: ${flags.image}`, { path: flags.image });
      const r = await resume({
        imagePath: flags.image, ramBytes: flags.ram, restore: flags.restore, restoreOptions: strategyOptions(cmd, RESTORE_STRATEGIES, flags.restore, 'restore'),
        deterministic: flags.deterministic, largePages: flags.largePages,
        progress: !flags.json || process.stderr.isTTY, onConsole: consoleEcho(flags),
      });
      const verified = r.status === 'resumed' && r.check?.verdict === 'pass';
      print(flags.json, { ...(resumeJson(r) as object), verified }, () => resumeSummary(r, flags.verbose));
      process.exitCode = r.status === 'resumed' ? (verified ? RESUME_EXIT.resumed : RESUME_EXIT.failed) : RESUME_EXIT[r.status];
    });

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
    .addOption(detOpt())
    .addOption(largeOpt())
    .addOption(jsonOpt())
    .addOption(verboseOpt())
    .addOption(consoleOpt())
    .action(async (flags: CommonFlags & { workload: string; seed: number; policy: string; duration: number; interval: number; warmup?: number; prime?: number; scope: 'all' | 'workload'; pool?: number; baseline: boolean; trace?: string }) => {
      const trace = flags.trace ? new TraceFile(flags.trace) : undefined;
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
      print(flags.json, report, () => faultsSummary(report, flags.verbose));
      process.exitCode = report.verify.every((v) => v.badWords === 0) ? 0 : 1;
    });

  program
    .command('inspect')
    .description('show an image: signature, header, page counts, checksum status')
    .argument('<file>', 'swap device file')
    .addOption(jsonOpt())
    .action((file: string, flags: { json?: boolean }) => {
      const info = inspectImage(file);
      print(flags.json, info, () => formatInspection(info));
    });

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
    const e = err as { code?: string; exitCode?: number };
    if (e.code?.startsWith('commander.')) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : (e.exitCode ?? 1);
    process.stderr.write(`hiberlab: ${describeError(err)}\n`);
    return 1;
  }
}

