/**
 * `npm run bench [-- --json] [-- --sizes 128,512] [-- --live-sizes 128,512,1024] [-- --largest-sizes 64,128] [-- --restore-sizes 32,128,1024] [-- --reps 3] [-- --live-reps 5] [-- --no-write] [-- --no-huge-pages] [-- --cycle-reps 5] [-- --only hibernate|faults|live|largest|restore|cycle]`
 *
 * Side by side in one run, on the same guest and data (RAM filled by a `stream`
 * workload — hash output, incompressible — up to what swsusp can save):
 *   - hiberlab swsusp save (freeze → image committed) and bitmap-pbe restore
 *     (validate → trampoline done), boot excluded;
 *   - v86's own save_state() of the same machine at the same point, and
 *     restore_state() into a fresh instance;
 *   - the raw limit: writing the same number of image bytes to a file (+ fsync) and
 *     reading them back, and a host memcpy of them.
 * and, as a separate section, fault round trips per second through the whole
 * write-protection fault handler (bench/faults.ts).
 * Prints the tables and writes docs/BENCHMARKS.md (unless --no-write); with --only,
 * the other section of the file is kept as it was.
 */
import { closeSync, constants as fsConstants, fdatasync, fsyncSync, openSync, readFileSync, readSync, rmSync, write, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import tmp from 'tmp';
import { resume, swapBytesFor } from '../src/cycle.ts';
import { SwapDevice } from '../src/image/index.ts';
import { Guest } from '../src/machine/guest.ts';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import { Machine } from '../src/machine/machine.ts';
import { hugePageMemory, type HugePageAdvice } from '../src/machine/host-memory.ts';
import { pageAlignedMemory } from '../src/wasm.ts';
import { silentProgress } from '../src/metrics/progress.ts';
import { swsusp } from '../src/save/swsusp.ts';
import { runSave } from '../src/save/session.ts';
import { benchLive, liveMarkdown, renderLive, type LiveBenchRow } from './live.ts';
import { benchLargest, largestMarkdown, renderLargest, type LargestRow } from './largest.ts';
import { benchRestore, renderRestore, restoreMarkdown, type RestoreRow } from './restore.ts';
import { benchCycleTime, benchCyclesInProcess, cycleTimeMarkdown, renderCycleTime, type CycleTimeRow, type CyclesInProcessRow } from './cycle.ts';
import { DEFAULT_WORKLOAD } from '../src/cycle.ts';
import { benchFaults, faultsMarkdown, renderFaultWorkload, type FaultBench, type FaultBenchRow } from './faults.ts';
import { benchFlags, settle } from './settle.ts';

const MiB = 1024 * 1024;
const fsp = { write: promisify(write), fdatasync: promisify(fdatasync) };

interface Row {
  ramMiB: number;
  imageMiB: number;
  pages: number;
  hiberlabSaveMs: number;
  hiberlabRestoreMs: number;
  /** The boot kernel's boot (excluded from the restore), with the page scan's chunks: all, and those the CRC thread checked beside the boot. */
  resumeBootMs: number;
  scanChunks: number;
  crcThreadChunks: number;
  v86SaveMs: number;
  v86RestoreMs: number;
  v86StateMiB: number;
  /** v86's state written to a file with fsync, and read back: what persisting it would cost. */
  v86FileWriteMs: number;
  v86FileReadMs: number;
  fileWriteMs: number;
  fileReadMs: number;
  memcpyMs: number;
  /** How the host backed guest RAM (Machine.hugePages). */
  hostPages: string;
  verdict: string;
  /** How many runs the figures are the best of. */
  runs?: number;
}

const sum = (o: Readonly<Record<string, number>>, keys: string[]) => keys.reduce((a, k) => a + (o[k] ?? 0), 0);

/**
 * The I/O floor: `bytes` written to a file and made durable, then read back
 * (1 MiB at a time into one buffer, from the page cache). Writing is timed four ways
 * and the fastest counts: 8 MiB writes and one fsync at the end; the pattern the image
 * writer uses through the page cache (2 MiB writes, three in flight, a background
 * fdatasync every 32 MiB, fsync at the end); and the pattern it uses where it can,
 * O_DIRECT (2 MiB writes from page-aligned memory, three in flight, fsync at the end),
 * into a fresh file and into one whose blocks were written beforehand, as a swap
 * device's are.
 * So the writer is measured against the best the file system can do. The buffered ways
 * run last, so that the read finds the file in the page cache.
 */
async function rawFile(bytes: number, hostHugePages: boolean): Promise<{ writeMs: number; readMs: number }> {
  const path = tmp.tmpNameSync({ prefix: 'hiberlab-bench-raw-' });
  const chunk = new Uint8Array(8 * MiB);
  for (let i = 0; i < chunk.length; i += 4096) chunk[i] = i & 0xff;
  // Page-aligned and on huge pages when guest RAM is (bench flag --no-huge-pages), so
  // that the baseline's memory is backed as the memory the image is written from.
  const aligned = hostHugePages ? hugePageMemory(2 * MiB).bytes : pageAlignedMemory(2 * MiB);
  aligned.set(chunk.subarray(0, 2 * MiB));
  const timeWrite = async (how: 'plain' | 'overlapped' | 'direct' | 'direct-overwrite'): Promise<number> => {
    rmSync(path, { force: true });
    const directFlags = fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_DIRECT;
    if (how === 'direct-overwrite') {
      // The file's blocks written once beforehand, as a swap device's are (SwapDevice.create).
      const pre = openSync(path, directFlags);
      for (let off = 0; off < bytes; off += aligned.length) writeSync(pre, aligned, 0, Math.min(aligned.length, bytes - off), off);
      fsyncSync(pre);
      closeSync(pre);
    }
    await settle();
    const t = performance.now();
    const fd = openSync(path, how === 'direct' || how === 'direct-overwrite' ? directFlags : 'w+');
    if (how === 'plain') {
      for (let off = 0; off < bytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    } else {
      const step = 2 * MiB;
      const inFlight: Array<Promise<unknown>> = [];
      let unsynced = 0;
      let writeback: Promise<unknown> | undefined;
      for (let off = 0; off < bytes; off += step) {
        inFlight.push(fsp.write(fd, how === 'overlapped' ? chunk : aligned, 0, Math.min(step, bytes - off), off));
        if (inFlight.length >= 3) await inFlight.shift();
        unsynced += step;
        if (how === 'overlapped' && unsynced >= 32 * MiB && !writeback) {
          await Promise.all(inFlight.splice(0));
          unsynced = 0;
          writeback = fsp.fdatasync(fd).then(() => (writeback = undefined));
        }
      }
      await Promise.all(inFlight);
      await writeback;
    }
    fsyncSync(fd);
    closeSync(fd);
    return performance.now() - t;
  };
  const writeMs = Math.min(await timeWrite('direct'), await timeWrite('direct-overwrite'), await timeWrite('plain'), await timeWrite('overlapped'));
  const fd = openSync(path, 'r');
  const t = performance.now();
  for (let off = 0; off < bytes; off += MiB) readSync(fd, aligned, 0, Math.min(MiB, bytes - off), off);
  const readMs = performance.now() - t;
  closeSync(fd);
  rmSync(path, { force: true });
  return { writeMs, readMs };
}

/** Writes `data` to a fresh file + fsync and reads it back into a new buffer. */
function persistAndReload(data: Uint8Array): { writeMs: number; readMs: number } {
  const path = tmp.tmpNameSync({ prefix: 'hiberlab-bench-v86state-' });
  let t = performance.now();
  const fd = openSync(path, 'w+');
  for (let off = 0; off < data.length; off += 64 * MiB) writeSync(fd, data, off, Math.min(64 * MiB, data.length - off), off);
  fsyncSync(fd);
  const writeMs = performance.now() - t;
  t = performance.now();
  const back = new Uint8Array(data.length);
  for (let off = 0; off < data.length; off += 64 * MiB) readSync(fd, back, off, Math.min(64 * MiB, data.length - off), off);
  const readMs = performance.now() - t;
  closeSync(fd);
  rmSync(path, { force: true });
  return { writeMs, readMs };
}

function memcpy(bytes: number): number {
  const a = new Uint8Array(bytes);
  const b = new Uint8Array(bytes);
  a.fill(1);
  b.fill(2);
  const t = performance.now();
  b.set(a);
  return performance.now() - t;
}

async function benchOnce(ramMiB: number, hostHugePages: boolean): Promise<Row> {
  const ramBytes = ramMiB * MiB;
  const image = loadGuestImage();
  // swsusp needs one free frame per used one: fill a little under half of RAM.
  const workload = `stream:${Math.floor(ramMiB * 0.45)}M`;
  const swapPath = tmp.tmpNameSync({ prefix: 'hiberlab-bench-', postfix: '.swap' });
  const swap = SwapDevice.ensure(swapPath, swapBytesFor(ramBytes));
  const guest = await Guest.boot({ ramBytes, image, workload, seed: 1, swapPath, prefault: true, hostHugePages });
  await guest.runTicks(5);

  // v86's own snapshot of this machine, at this point (the CPU is stopped at a hypercall).
  await settle();
  let t = performance.now();
  const state = await guest.machine.v86SaveState();
  const v86SaveMs = performance.now() - t;

  // No oracle capture here (it copies all RAM and is not part of hibernation): the
  // resume checks every page against the image's CRCs and the tasks verify their data.
  await settle();
  const { report: save } = await runSave(swsusp, {}, { guest, swap, progress: silentProgress, oracle: false });
  swap.close();
  if (process.env.BENCH_PHASES) console.error(JSON.stringify(save.phasesMs));
  const hiberlabSaveMs = sum(save.phasesMs, ['freeze', 'prepare', 'atomic', 'write']);

  const fresh = await Machine.boot({ ramBytes, image, swapPath, prefault: true, hostHugePages });
  await settle();
  t = performance.now();
  await fresh.v86RestoreState(state);
  const v86RestoreMs = performance.now() - t;
  await fresh.powerOff();

  await settle();
  const r = await resume({ imagePath: swapPath, ramBytes, image, prefault: true, hostHugePages });
  if (process.env.BENCH_PHASES) console.error(JSON.stringify(r.phasesMs), JSON.stringify(r.restore?.phasesMs), r.restore?.pbes);
  const hiberlabRestoreMs = sum(r.phasesMs, ['validate', 'restore', 'trampoline']);
  const verdict = r.status === 'resumed' && r.check?.verdict === 'pass' ? 'pass' : 'FAIL';
  rmSync(swapPath, { force: true });

  // The disk-heavy references last, so that none of them leaves writeback or discards
  // (this file system is mounted with `discard`) under the measurements above.
  await settle();
  const raw = await rawFile(save.imageBytes, hostHugePages);
  await settle();
  const v86File = persistAndReload(new Uint8Array(state));
  return {
    ramMiB,
    imageMiB: save.imageBytes / MiB,
    pages: save.pagesSaved,
    hiberlabSaveMs,
    hiberlabRestoreMs,
    resumeBootMs: r.phasesMs.boot ?? NaN,
    scanChunks: r.validationScan?.chunks ?? NaN,
    crcThreadChunks: r.validationScan?.crcThreadChunks ?? NaN,
    v86SaveMs,
    v86RestoreMs,
    v86StateMiB: state.byteLength / MiB,
    v86FileWriteMs: v86File.writeMs,
    v86FileReadMs: v86File.readMs,
    fileWriteMs: raw.writeMs,
    fileReadMs: raw.readMs,
    memcpyMs: memcpy(save.imageBytes),
    hostPages: hostPagesText(guest.machine.hugePages),
    verdict,
  };
}

/**
 * `reps` runs at one size; every time column is the best (lowest) of its runs. This
 * machine's disk and CPU are shared: the same write varies severalfold within a minute,
 * so a single run compares noise. The best of each is the least disturbed figure, and
 * every column, ours and the references alike, gets the same treatment.
 */
async function benchSize(ramMiB: number, reps: number, hostHugePages: boolean): Promise<Row> {
  const runs: Row[] = [];
  for (let i = 0; i < reps; i++) runs.push(await benchOnce(ramMiB, hostHugePages));
  const best = (key: keyof Row) => Math.min(...runs.map((r) => r[key] as number));
  return {
    ...runs[0]!,
    hiberlabSaveMs: best('hiberlabSaveMs'),
    hiberlabRestoreMs: best('hiberlabRestoreMs'),
    resumeBootMs: best('resumeBootMs'),
    crcThreadChunks: Math.max(...runs.map((r) => r.crcThreadChunks)),
    v86SaveMs: best('v86SaveMs'),
    v86RestoreMs: best('v86RestoreMs'),
    v86FileWriteMs: best('v86FileWriteMs'),
    v86FileReadMs: best('v86FileReadMs'),
    fileWriteMs: best('fileWriteMs'),
    fileReadMs: best('fileReadMs'),
    memcpyMs: best('memcpyMs'),
    verdict: runs.every((r) => r.verdict === 'pass') ? 'pass' : 'FAIL',
    runs: reps,
  };
}

function hostPagesText(h: HugePageAdvice): string {
  return h.advisedBytes > 0 ? `2 MiB transparent huge pages (the host's THP mode: ${h.mode})` : `4 KiB pages (${h.reason ?? 'none asked for'})`;
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}×`;
}

function render(rows: Row[]): string {
  const t = new Table({
    head: ['RAM', 'image', 'hiberlab save + restore', 'boot kernel boot (CRC thread\'s chunks)', 'v86 save_state + restore_state', 'v86 incl. its file', 'file write + read', 'memcpy', 'vs v86 (≤ 0.3×)', 'vs v86 incl. file', 'vs file (≤ 2×)', 'cycle'],
    style: { head: [], border: [] },
  });
  for (const r of rows) {
    const ours = r.hiberlabSaveMs + r.hiberlabRestoreMs;
    const v86 = r.v86SaveMs + r.v86RestoreMs;
    const file = r.fileWriteMs + r.fileReadMs;
    t.push([
      `${r.ramMiB} MiB`,
      `${r.imageMiB.toFixed(1)} MiB`,
      `${r.hiberlabSaveMs.toFixed(0)} + ${r.hiberlabRestoreMs.toFixed(0)} ms`,
      `${r.resumeBootMs.toFixed(0)} ms (${r.crcThreadChunks}/${r.scanChunks})`,
      `${r.v86SaveMs.toFixed(0)} + ${r.v86RestoreMs.toFixed(0)} ms (${r.v86StateMiB.toFixed(0)} MiB)`,
      `${(v86 + r.v86FileWriteMs + r.v86FileReadMs).toFixed(0)} ms`,
      `${r.fileWriteMs.toFixed(0)} + ${r.fileReadMs.toFixed(0)} ms`,
      `${r.memcpyMs.toFixed(1)} ms`,
      ratio(ours, v86),
      ratio(ours, v86 + r.v86FileWriteMs + r.v86FileReadMs),
      ratio(ours, file),
      r.verdict,
    ]);
  }
  return t.toString();
}

/** The document's head (title, run line). */
function head(): string {
  const lines = [
    '# Benchmarks',
    '',
    'Produced by `npm run bench` (bench/run.ts); rerun it after changing anything on the hot path',
    '(src/save, src/restore, src/image, src/machine). Numbers vary by up to 2× on this shared',
    'machine; compare columns within one run, not across runs.',
    '',
    `Run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version} (flags: ${benchFlags()}), ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB.`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The swsusp / v86 / raw-file section. */
function hibernateMarkdown(rows: Row[]): string {
  const lines = [
    '## swsusp save + bitmap-pbe restore against v86 snapshots and the raw limit',
    '',
    `Best of ${rows[0]?.runs ?? 1} runs for every column (this machine\'s disk and CPU are shared and noisy).`,
    'Guest RAM filled by a `stream` workload (hash output: incompressible) to 45 % of RAM, about',
    'as much as swsusp can save. hiberlab save = freeze → image committed (fsync, signature);',
    'restore = validate every checksum → load → trampoline done; boots excluded. The validation',
    'begins with the boot kernel\'s boot (the CRC thread checks the pages while v86 boots it), so',
    'the restore counts only what the boot kernel still waits for; the boot it overlaps and the',
    'chunks of the page scan the CRC thread checked (most of any run) are in their own columns. v86 = its own',
    '`save_state()` of the same machine at the same point and `restore_state()` into a fresh',
    'instance (no compression on save; zero pages skipped). File = writing the image\'s bytes to',
    'a file and making them durable (the fastest of: one fsync at the end; the image writer\'s',
    'buffered pattern, 2 MiB writes with a background fdatasync every 32 MiB; its O_DIRECT pattern,',
    '2 MiB writes from page-aligned memory, into a fresh file and into one whose blocks were written',
    'beforehand, as the swap device\'s are), then reading them back from the page cache; memcpy =',
    'one host copy of those bytes.',
    `Host memory behind guest RAM and behind the file baseline's buffer: ${rows[0]?.hostPages ?? '-'}`,
    '(docs/V86.md, "Guest RAM on host huge pages"; `--no-huge-pages` measures on 4 KiB pages).',
    'All machines are prefaulted (every page of guest RAM touched once at boot), so both sides',
    'measure resident RAM as on real hardware rather than the host committing v86\'s lazily',
    'allocated memory on first touch. The oracle capture is off (the resumed pages are checked',
    'against the image\'s CRCs, and the workload tasks verify their data: "cycle"). Before each',
    'measured operation the process and the disk settle (garbage collected, `sync`, 250 ms quiet;',
    'bench/settle.ts), so that no column pays for the one before it.',
    '',
    '| RAM | image | pages | hiberlab save | hiberlab restore | boot kernel boot | chunks the CRC thread checked (beside the boot) | v86 save_state | v86 restore_state | v86 state file write + read | file write | file read | memcpy | ours / v86 (target ≤ 0.3) | ours / (v86 + its file) | ours / file (target ≤ 2) | cycle |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ours = r.hiberlabSaveMs + r.hiberlabRestoreMs;
    lines.push(
      `| ${r.ramMiB} MiB | ${r.imageMiB.toFixed(1)} MiB | ${r.pages} | ${r.hiberlabSaveMs.toFixed(0)} ms | ${r.hiberlabRestoreMs.toFixed(0)} ms | ${r.resumeBootMs.toFixed(0)} ms | ${r.crcThreadChunks} of ${r.scanChunks} | ` +
        `${r.v86SaveMs.toFixed(0)} ms | ${r.v86RestoreMs.toFixed(0)} ms | ${r.v86FileWriteMs.toFixed(0)} + ${r.v86FileReadMs.toFixed(0)} ms | ${r.fileWriteMs.toFixed(0)} ms | ${r.fileReadMs.toFixed(0)} ms | ${r.memcpyMs.toFixed(1)} ms | ` +
        `${(ours / (r.v86SaveMs + r.v86RestoreMs)).toFixed(2)} | ${(ours / (r.v86SaveMs + r.v86RestoreMs + r.v86FileWriteMs + r.v86FileReadMs)).toFixed(2)} | ${(ours / (r.fileWriteMs + r.fileReadMs)).toFixed(2)} | ${r.verdict} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function renderFaults(rows: FaultBenchRow[]): string {
  const t = new Table({ head: ['V8 compilers', 'mode', 'handler', 'median M faults/s', 'best', 'ns/fault', 'protect 8192 pages'], style: { head: [], border: [] } });
  for (const r of rows) t.push([r.tiers, r.mode, r.handler, r.medianM.toFixed(2), r.bestM.toFixed(2), r.nsPerFault.toFixed(0), `${r.protectMs.toFixed(2)} ms`]);
  return t.toString();
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer, not ${text}`);
  return n;
}

function sizeList(flag: string, text: string): number[] {
  return text.split(',').map((t) => positive(flag, t));
}

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      'live-sizes': { type: 'string' },
      'largest-sizes': { type: 'string' },
      'restore-sizes': { type: 'string' },
      'cycle-reps': { type: 'string', default: '5' },
      only: { type: 'string' },
      reps: { type: 'string', default: '3' },
      // Downtimes are short, and a shared 2-core host's stalls weigh on them: more clean runs than the long columns get.
      'live-reps': { type: 'string', default: '5' },
      'no-write': { type: 'boolean', default: false },
      // Guest RAM and the raw baseline's memory on 4 KiB host pages (see docs/V86.md).
      'no-huge-pages': { type: 'boolean', default: false },
    },
  });
  const json = opts.json;
  const only = opts.only;
  if (only !== undefined && !['hibernate', 'faults', 'live', 'largest', 'restore', 'cycle'].includes(only)) throw new Error(`--only takes hibernate, faults, live, largest, restore or cycle, not ${only}`);
  const sizes = sizeList('--sizes', opts.sizes ?? '128,512');
  const liveSizes = sizeList('--live-sizes', opts['live-sizes'] ?? opts.sizes ?? '128,512,1024');
  const reps = positive('--reps', opts.reps);
  const liveReps = positive('--live-reps', opts['live-reps']);
  const largestSizes = sizeList('--largest-sizes', opts['largest-sizes'] ?? '64,128');
  const restoreSizes = sizeList('--restore-sizes', opts['restore-sizes'] ?? '32,128,1024');
  const rows: Row[] = [];
  if (only === undefined || only === 'hibernate') {
    for (const size of sizes) {
      if (!json) process.stderr.write(`bench: ${size} MiB…\n`);
      rows.push(await benchSize(size, reps, !opts['no-huge-pages']));
    }
  }
  let faults: FaultBench | undefined;
  if (only === undefined || only === 'faults') {
    if (!json) process.stderr.write('bench: fault round trips, and the cost per fault in a workload…\n');
    faults = await benchFaults();
  }
  let liveRows: LiveBenchRow[] = [];
  if (only === undefined || only === 'live') {
    if (!json) process.stderr.write('bench: saving while running…\n');
    for (const size of liveSizes) liveRows.push(...(await benchLive(size, liveReps)));
  }
  let largestRows: LargestRow[] = [];
  if (only === undefined || only === 'largest') {
    if (!json) process.stderr.write('bench: largest image by real saves…\n');
    for (const size of largestSizes) largestRows.push(...(await benchLargest(size)));
  }
  let restoreRows: RestoreRow[] = [];
  if (only === undefined || only === 'restore') {
    if (!json) process.stderr.write('bench: every restore strategy on the same image…\n');
    for (const size of restoreSizes) restoreRows.push(...(await benchRestore(size)));
  }
  let cycleRows: CycleTimeRow[] = [];
  const inProcessRows: CyclesInProcessRow[] = [];
  if (only === undefined || only === 'cycle') {
    if (!json) process.stderr.write('bench: the whole cycle command…\n');
    const cycleReps = positive('--cycle-reps', opts['cycle-reps']);
    cycleRows.push(...(await benchCycleTime('128M', DEFAULT_WORKLOAD, cycleReps)));
    cycleRows.push(...(await benchCycleTime('2047M', 'churn:2M@1000,stream:30%', Math.min(cycleReps, 3))));
    inProcessRows.push(await benchCyclesInProcess('128M', DEFAULT_WORKLOAD, 10));
  }
  if (json) process.stdout.write(`${JSON.stringify({ rows, faults, live: liveRows, largest: largestRows, restore: restoreRows, cycle: cycleRows, cyclesInProcess: inProcessRows }, null, 2)}\n`);
  else {
    const parts = [rows.length ? render(rows) : '', faults ? `${renderFaults(faults.roundTrips)}\n${renderFaultWorkload(faults)}` : '', liveRows.length ? renderLive(liveRows) : '', largestRows.length ? renderLargest(largestRows) : '', restoreRows.length ? renderRestore(restoreRows) : '', cycleRows.length ? renderCycleTime(cycleRows, inProcessRows) : ''];
    process.stdout.write(`${parts.filter(Boolean).join('\n\n')}\n`);
  }
  if (!opts['no-write']) {
    const hib = rows.length ? hibernateMarkdown(rows) : existingSection('## swsusp save');
    const flt = faults ? faultsMarkdown(faults) : existingSection('## Fault round trips');
    const live = liveRows.length ? liveMarkdown(liveRows) : existingSection('## Saving while running');
    const largest = largestRows.length ? largestMarkdown(largestRows) : existingSection('## Largest image');
    const restore = restoreRows.length ? restoreMarkdown(restoreRows) : existingSection('## Restore strategies');
    const cycle = cycleRows.length ? cycleTimeMarkdown(cycleRows, inProcessRows) : existingSection('## The whole `hiberlab cycle` command');
    writeFileSync(new URL('../docs/BENCHMARKS.md', import.meta.url), [head(), cycle, hib, flt, live, largest, restore].filter(Boolean).join('\n') + existingExtra());
  }
}

/** A generated section of the current docs/BENCHMARKS.md (from its heading to the next), kept when it was not rerun. */
function existingSection(heading: string): string {
  try {
    const text = readFileSync(new URL('../docs/BENCHMARKS.md', import.meta.url), 'utf8');
    const i = text.indexOf(`\n${heading}`);
    if (i < 0) return '';
    const j = text.indexOf('\n## ', i + 1);
    return `${text.slice(i + 1, j < 0 ? undefined : j).trimEnd()}\n`;
  } catch {
    return '';
  }
}

/** Sections of docs/BENCHMARKS.md written by hand (after the generated table) are kept. */
function existingExtra(): string {
  try {
    const text = readFileSync(new URL('../docs/BENCHMARKS.md', import.meta.url), 'utf8');
    const i = text.indexOf('\n## Notes');
    return i >= 0 ? text.slice(i) : '';
  } catch {
    return '';
  }
}

await main();
