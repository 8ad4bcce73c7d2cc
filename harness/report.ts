/**
 * What the CLI prints for people: a compact summary that fits 80 columns (a headline,
 * Linux-style speed lines, the phases in order, the oracle's verdict in a few lines),
 * and with -v everything else. The JSON reports are the objects themselves (schema:
 * docs/REPORT.md).
 */
import type { CycleReport, HibernateResult, ResumeResult } from '../src/cycle.ts';
import { formatStat, type StatSpecs } from '../src/declarations.ts';
import type { FaultRunReport } from '../src/mmu/fault-run.ts';
import type { OracleVerdict } from '../src/oracle/verdict.ts';
import type { RestoreReport } from '../src/restore/strategy.ts';
import type { SaveReport } from '../src/save/strategy.ts';
import { RESTORE_STRATEGIES, SAVE_STRATEGIES } from '../src/strategies.ts';
import { hex, hex32, speedLine } from '../src/units.ts';

export const WIDTH = 80;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes % (1024 * 1024) ? 1 : 0)} MiB`;
const ms = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);

/** Words joined with `sep`, broken into lines of at most `width` columns, later lines indented by `indent`. */
export function wrap(first: string, words: readonly string[], sep = ', ', width = WIDTH, indent = ' '.repeat(first.length)): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (let i = 0; i < words.length; i++) {
    const piece = words[i]! + (i < words.length - 1 ? sep.trimEnd() : '');
    const candidate = empty ? line + piece : `${line} ${piece}`;
    if (!empty && candidate.length > width) {
      lines.push(line);
      line = indent + piece;
    } else {
      line = candidate;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

/** "freeze 1.2, prepare 3.4 … ms" on as few lines as fit. */
function phaseLines(label: string, phases: Readonly<Record<string, number>>): string[] {
  const entries = Object.entries(phases).filter(([, v]) => v >= 0.05);
  if (!entries.length) return [];
  const words = entries.map(([k, v]) => `${k} ${v.toFixed(1)}`);
  words[words.length - 1] += ' ms';
  return wrap(`${label.padEnd(9)}`, words);
}

function ofPrefix(phases: Readonly<Record<string, number>>, prefix: string): Record<string, number> {
  return Object.fromEntries(Object.entries(phases).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/** The oracle's verdict in a few lines. */
export function verdictLines(o: OracleVerdict): string[] {
  const lines: string[] = [];
  const f = o.frames;
  const mem = o.memory;
  if (f) lines.push(`frames   ${f.imagePages} saved of ${f.mustSave} in use at the atomic point (${f.hibernationFrames} the hibernation's own); ${f.missingPages.length} missing, ${f.extraPages.length} extra`);
  if (mem) {
    const derived = mem.derived?.writeBitsRestored ? `; ${mem.derived.writeBitsRestored} PTE R/W bits expected restored in ${mem.derived.pageTables} page tables` : '';
    lines.push(`pages    ${mem.pagesCompared - mem.differingPages.length} of ${mem.pagesCompared} equal ${mem.against === 'oracle' ? 'the atomic point' : 'their CRC in the image'}${derived}`);
  }
  if (o.cpu) lines.push(`cpu      ${o.cpu.differences.length ? `${o.cpu.differences.length} of ${o.cpu.fieldsCompared.length} fields differ` : `${o.cpu.fieldsCompared.length} fields equal`} when control came back`);
  const bad = o.tasks.reports.filter((v) => v.badWords);
  if (o.tasks.expected || o.tasks.reports.length) lines.push(`workloads ${o.tasks.reports.length - bad.length} of ${o.tasks.expected} verified their data`);
  return lines.flatMap((l) => (l.length > WIDTH ? wrap('', l.split(' '), ' ', WIDTH, '         ') : [l]));
}

/** Which compilers V8 used for v86 (chooseWasmTiers): every timing depends on them. */
const wasmLine = (tiers: string) => `wasm     V8 compiled v86 with ${tiers}`;

/** The failures and the first pages of each list, for a verdict that is not a pass. */
function failureLines(o: OracleVerdict, limit = 8): string[] {
  const out: string[] = [];
  for (const f of o.failures) out.push(...wrap('FAIL: ', f.split(' '), ' ', WIDTH, '      '));
  const list = (title: string, pages: readonly { pfn: number; owner: string }[]) => {
    if (!pages.length) return;
    out.push(...wrap(`  ${title}: `, pages.slice(0, limit).map((p) => `${hex(p.pfn)} (${p.owner})`).concat(pages.length > limit ? [`… ${pages.length - limit} more`] : [])));
  };
  list('missing', o.frames?.missingPages ?? []);
  list('extra', o.frames?.extraPages ?? []);
  list('differ', o.memory?.differingPages ?? []);
  return out;
}

export function cycleSummary(r: CycleReport, verbose = false): string {
  const s = r.save;
  const head = `${r.verdict === 'pass' ? 'PASS' : 'FAIL'}  ${s.strategy} → ${r.config.restore}, ${mib(r.config.ramBytes)}: ${s.pagesSaved} pages (${mib(s.imageBytes)}), downtime ${ms(s.downtime.ms)}`;
  const lines = wrap('', head.split(' '), ' ', WIDTH, '      ');
  lines.push(...wrap('workload ', [`${r.config.workload} (seed ${r.config.seed})`]));
  lines.push(speedLine('Wrote', s.pageBytesWritten, s.writeMs));
  if (r.restore) lines.push(speedLine('Read', r.restore.pagesLoaded * 4096, (r.restore.phasesMs.plan ?? 0) + (r.restore.phasesMs.load ?? 0)));
  lines.push(...phaseLines('save', s.phasesMs));
  lines.push(...phaseLines('resume', ofPrefix(r.phasesMs, 'resume.')));
  lines.push(...verdictLines(r.oracle));
  lines.push(...failureLines(r.oracle));
  if (verbose) lines.push('', ...saveDetails(s), ...restoreDetails(r.restore), ...verifyLines(r.oracle), ...validationLines(r.validationScan, r.phasesMs['resume.validate']), wasmLine(r.config.wasmTiers));
  return lines.join('\n');
}

export function hibernateSummary(h: HibernateResult, verbose = false): string {
  const s = h.save;
  const lines = wrap('', `saved  ${s.strategy}, ${mib(h.ramBytes)}: ${s.pagesSaved} pages (${mib(s.imageBytes)}) on ${h.imagePath}, downtime ${ms(s.downtime.ms)}`.split(' '), ' ', WIDTH, '       ');
  lines.push(...wrap('workload ', [`${h.workload} (seed ${h.seed})`]));
  lines.push(speedLine('Wrote', s.pageBytesWritten, s.writeMs));
  lines.push(...phaseLines('save', s.phasesMs));
  if (verbose) lines.push('', ...saveDetails(s));
  return lines.join('\n');
}

export function resumeSummary(r: ResumeResult, verbose = false): string {
  if (r.status !== 'resumed') return wrap('', `${r.status === 'no-image' ? 'no image to resume: booted normally' : 'image refused'}${r.reason ? `: ${r.reason}` : ''}`.split(' '), ' ', WIDTH, '  ').join('\n');
  const check = r.check!;
  const lines = [`${check.verdict === 'pass' ? 'PASS' : 'FAIL'}  resumed with ${r.restore?.strategy} (generation ${r.generation ?? '-'})`];
  if (r.restore) lines.push(speedLine('Read', r.restore.pagesLoaded * 4096, (r.restore.phasesMs.plan ?? 0) + (r.restore.phasesMs.load ?? 0)));
  lines.push(...phaseLines('resume', r.phasesMs));
  lines.push(...verdictLines(check), ...failureLines(check));
  if (verbose) lines.push('', ...restoreDetails(r.restore), ...verifyLines(check), ...validationLines(r.validationScan, r.phasesMs.validate));
  return lines.join('\n');
}

/** Every number of a save, one per line (-v). */
function saveDetails(s: SaveReport): string[] {
  const decl = SAVE_STRATEGIES.get(s.strategy)?.stats ?? {};
  return [
    `save strategy ${s.strategy}${optionText(s.options)}`,
    `  pages saved ${s.pagesSaved}, image ${s.imageBytes} bytes, page bytes written ${s.pageBytesWritten}`,
    `  atomic copy ${s.atomicCopyPages} pages; ${s.snapshotFrames} frames taken for the hibernation; ${s.cachePagesDropped} cache pages dropped`,
    `  tasks frozen ${s.tasksFrozen}; memory at the atomic point: ${s.memory.usedAtAtomic} used, ${s.memory.freeAtAtomic} free of ${s.memory.frames} frames (${s.memory.nosaveFrames} NOSAVE)`,
    `  downtime ${ms(s.downtime.ms)}, ${s.downtime.instructions} guest instructions from the freeze to the atomic point`,
    ...statLines(decl, s.stats),
  ];
}

function restoreDetails(r: RestoreReport | undefined): string[] {
  if (!r) return [];
  const decl = RESTORE_STRATEGIES.get(r.strategy)?.stats ?? {};
  return [
    `restore strategy ${r.strategy}${optionText(r.options)}`,
    `  pages loaded ${r.pagesLoaded}: ${r.inPlacePages} in place, ${r.pbes} through PBEs${r.unchangedPages ? `, ${r.unchangedPages} already equal` : ''}; ${r.snapshotFrames} frames taken from the boot kernel (it used ${r.bootKernelFrames} itself)`,
    ...statLines(decl, r.stats),
    ...phaseLines('  phases', r.phasesMs),
  ];
}

function statLines(decl: StatSpecs, stats: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const [name, spec] of Object.entries(decl)) {
    if (stats[name] === undefined) continue;
    out.push(`  ${name}: ${formatStat(spec, stats[name] as never)}`);
  }
  return out;
}

function optionText(options: Readonly<Record<string, unknown>>): string {
  const set = Object.entries(options).filter(([, v]) => v !== undefined);
  return set.length ? ` (${set.map(([k, v]) => `${k} ${String(v)}`).join(', ')})` : '';
}

function verifyLines(o: OracleVerdict): string[] {
  const out = o.tasks.reports.map((v) => `  ${v.workload === 'cache' ? 'cache' : `task ${v.taskId} (${v.workload})`}: ${v.badWords ? `${v.badWords} bad` : 'ok'} of ${v.wordsChecked} words`);
  if (o.cpu?.differences.length) for (const d of o.cpu.differences) out.push(`  cpu ${d.field}: expected ${hex32(d.expected)}, got ${hex32(d.actual)}`);
  if (o.memory?.derived?.writeBitsRestored) out.push(`  derived: ${o.memory.derived.why}`);
  return out.length ? ['verification', ...out] : [];
}

/** The page scan begins on the CRC thread while the boot kernel boots: its share, and what the boot kernel waited for. */
function validationLines(scan: { chunks: number; crcThreadChunks: number } | undefined, waited: number | undefined): string[] {
  if (!scan) return [];
  return [`validation ${scan.chunks} chunks checked, ${scan.crcThreadChunks} on the CRC thread (begun with the boot); the boot kernel waited ${ms(waited ?? 0)}`];
}

export function faultsSummary(r: FaultRunReport, verbose = false): string {
  const f = r.faults;
  const c = r.config;
  const ok = r.verify.every((v) => v.badWords === 0);
  const rate = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));
  const lines = [
    `${ok ? 'PASS' : 'FAIL'}  ${c.policy}, ${mib(c.ramBytes)}: ${f.total} faults on ${f.pagesFaulted} pages in ${c.durationMs} guest ms`,
    ...wrap('workload ', [`${c.workload} (seed ${c.seed})`]),
    `protect  ${r.protectedPages} pages (${c.scope}), ${r.rounds} rounds${c.intervalMs ? ` (every ${c.intervalMs} ms)` : ''}`,
    `rate     ${rate(f.perGuestSecond)}/s of guest time, ${rate(f.perWallSecond)}/s of host time`,
  ];
  if (r.slowdown !== undefined) lines.push(`slowdown ${r.slowdown.toFixed(2)}x (workload steps per host second, unprotected / protected)`);
  if (r.costPerFaultUs !== undefined) lines.push(`per fault ${r.costPerFaultUs.toFixed(2)} us of host time (${ms(r.extraWallMs ?? 0)} over the baseline)`);
  if (!ok) lines.push('FAIL: a workload found bad data under protection');
  if (verbose) {
    lines.push('', `faults   ${f.handled} handled, ${f.notMine} not mine; ${f.meanPerPage.toFixed(2)} per page on average, at most ${f.maxPerPage}`);
    lines.push(...wrap('per page ', Object.entries(f.histogram).map(([k, v]) => `${k}: ${v}`)));
    lines.push(`tlb      ${r.tlb.fullFlushes} full flushes, ${r.tlb.pagesInvalidated} single-page invalidations in ${r.tlb.batches} batches`);
    lines.push(`never    ${r.forbiddenPages} pages could not be protected; ${r.splits} 4 MiB pages split`);
    lines.push(wasmLine(c.wasmTiers));
    const jit = (m: { jitCompiles: number }) => (m.jitCompiles ? `, ${m.jitCompiles} JIT compiles` : '');
    if (r.prime) lines.push(`prime    ${r.prime.slices.length} rounds, ${r.prime.faults} faults, ${ms(r.prime.wallMs)}${jit(r.prime)}${r.prime.settled ? '' : ' (JIT not settled)'}; warm-up ${c.warmupMs} ms`);
    lines.push(`run      protected ${ms(r.protectedRun.wallMs)}, ${r.protectedRun.steps} steps, ${r.protectedRun.instructions} instructions${jit(r.protectedRun)}`);
    if (r.baselineRun) lines.push(`         unprotected ${ms(r.baselineRun.wallMs)}, ${r.baselineRun.steps} steps, ${r.baselineRun.instructions} instructions${jit(r.baselineRun)}`);
    if (f.topPages.length) lines.push(...wrap('top      ', f.topPages.map((p) => `${hex(p.pfn)} (${p.owner}) ${p.faults}`)));
    for (const v of r.verify) lines.push(`  ${v.workload === 'cache' ? 'cache' : `task ${v.taskId}`}: ${v.badWords ? `${v.badWords} bad` : 'ok'}`);
  }
  return lines.join('\n');
}
