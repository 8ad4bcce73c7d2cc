/**
 * The verdict on a cycle, owned by the oracle. A resume hands a Verifier the machine at
 * the two instants that matter, and the workloads' own reports at the end:
 *
 *   RESTORE_DONE  memory equals the image: the image's page set against the frames in
 *                 use at the atomic point (missing and extra pages, with owners), and
 *                 every saved page against the oracle's expected bytes
 *   RESUME_POINT  control is back, nothing has run: the CPU against the captured context
 *   the end       every workload (churn, stream tasks; the cache) verified its data
 *
 * A cycle passes only if all of these hold. Without an oracle (a resume in another
 * process than the save) the pages are checked against the image's CRCs and the CPU
 * against the image's saved context; the page set cannot be judged then, and the
 * report says so.
 */
import { crc32Pages } from '../image/crc.ts';
import type { ValidatedImage } from '../image/validate.ts';
import type { VerifyReport } from '../machine/guest.ts';
import type { Machine } from '../machine/machine.ts';
import { PAGE_SIZE, hex } from '../units.ts';
import { compareContexts, cpuContextNow, cpuContextOfSavedContext, describeCpuDifference, type CpuDifference, type CpuField, CPU_FIELDS } from './context.ts';
import type { Derivation, FrameRef, Oracle } from './oracle.ts';

export interface PageDifference {
  readonly pfn: number;
  readonly owner: string;
  /** First differing byte within the page (-1 when compared by CRC). */
  readonly offset: number;
  readonly expected: number;
  readonly actual: number;
}

/** The image's page set against the frames in use at the atomic point. */
export interface FrameCheck {
  /** Frames the image had to hold: in use at the atomic point, less the hibernation's own and NOSAVE. */
  readonly mustSave: number;
  readonly imagePages: number;
  /** Frames the hibernation itself had taken at the atomic point (not saved). */
  readonly hibernationFrames: number;
  /** In use at the atomic point, not in the image. */
  readonly missingPages: readonly FrameRef[];
  /** In the image, not in use at the atomic point (free, or the hibernation's own, or NOSAVE). */
  readonly extraPages: readonly FrameRef[];
}

export interface MemoryCheck {
  readonly against: 'oracle' | 'image';
  readonly pagesCompared: number;
  readonly differingPages: readonly PageDifference[];
  /** How the oracle's expected bytes differ from its capture, and why (against the oracle only). */
  readonly derived?: Derivation;
}

export interface CpuCheck {
  readonly against: 'oracle' | 'image';
  readonly fieldsCompared: readonly CpuField[];
  readonly differences: readonly CpuDifference[];
}

export interface TaskCheck {
  /** Reports the workloads had to bring: one per churn/stream task, one for the cache. */
  readonly expected: number;
  readonly reports: readonly VerifyReport[];
}

export interface OracleVerdict {
  readonly verdict: 'pass' | 'fail';
  /** One sentence per broken rule. */
  readonly failures: readonly string[];
  readonly against: 'oracle' | 'image';
  /** Absent when there was no oracle, or no resume. */
  readonly frames?: FrameCheck;
  readonly memory?: MemoryCheck;
  readonly cpu?: CpuCheck;
  readonly tasks: TaskCheck;
}

/** Pages in a list before it is cut (a whole RAM of missing pages is not a useful report). */
const LIST_LIMIT = 4096;

/** One resume's observations, against the oracle or, without one, against the image. */
export class Verifier {
  frames: FrameCheck | undefined;
  memory: MemoryCheck | undefined;
  cpu: CpuCheck | undefined;

  constructor(private readonly image: ValidatedImage, private readonly oracle?: Oracle) {}

  get against(): 'oracle' | 'image' {
    return this.oracle ? 'oracle' : 'image';
  }

  /** At RESTORE_DONE: the image's page set, and every saved page as it now is in RAM. */
  atRestoreDone(m: Machine): void {
    if (this.oracle) {
      this.frames = checkImagePages(this.oracle, this.image.pfnWords);
      this.memory = { against: 'oracle', ...comparePages(m, this.oracle, this.image.pfns), derived: this.oracle.derivation() };
    } else {
      this.memory = { against: 'image', ...comparePageCrcs(m, this.image) };
    }
  }

  /** At RESUME_POINT: the CPU against the context of the atomic point. */
  atResumePoint(m: Machine): void {
    const now = cpuContextNow(m);
    const expected = this.oracle ? this.oracle.cpu : cpuContextOfSavedContext(this.image.header.context.bytes);
    this.cpu = {
      against: this.against,
      fieldsCompared: CPU_FIELDS.filter((f) => (expected as Partial<Record<CpuField, number>>)[f] !== undefined),
      differences: compareContexts(expected, now),
    };
  }

  /** The verdict, once the workloads have reported. */
  verdict(verify: readonly VerifyReport[], expectedReports: number): OracleVerdict {
    return judge({ against: this.against, frames: this.frames, memory: this.memory, cpu: this.cpu, tasks: { expected: expectedReports, reports: verify } });
  }
}

/** The verdict from what was observed; `refusal` is why there was no resume, if there was none. */
export function judge(seen: { against: 'oracle' | 'image'; frames?: FrameCheck; memory?: MemoryCheck; cpu?: CpuCheck; tasks: TaskCheck; refusal?: string }): OracleVerdict {
  const failures: string[] = [];
  if (seen.refusal) failures.push(seen.refusal);
  const list = (pages: readonly FrameRef[]) => pages.slice(0, 8).map((p) => `${hex(p.pfn)} (${p.owner})`).join(', ') + (pages.length > 8 ? ', …' : '');
  const f = seen.frames;
  if (f?.missingPages.length) failures.push(`${f.missingPages.length} pages in use at the atomic point are missing from the image: ${list(f.missingPages)}`);
  if (f?.extraPages.length) failures.push(`${f.extraPages.length} pages in the image were not in use at the atomic point: ${list(f.extraPages)}`);
  const mem = seen.memory;
  if (mem?.differingPages.length) {
    const d = mem.differingPages[0]!;
    failures.push(`${mem.differingPages.length} saved pages differ from the ${mem.against} after the restore (first: PFN ${hex(d.pfn)}, ${d.owner}${d.offset >= 0 ? `, byte ${d.offset}` : ''})`);
  }
  if (seen.cpu?.differences.length) failures.push(`CPU context differs when control came back: ${seen.cpu.differences.map((d) => describeCpuDifference(d, seen.cpu!.against)).join('; ')}`);
  if (!seen.refusal) {
    if (!mem) failures.push('the restored memory was never compared (no RESTORE_DONE)');
    if (!seen.cpu) failures.push('the CPU context was never compared (no RESUME_POINT)');
    const t = seen.tasks;
    if (t.reports.length !== t.expected) failures.push(`${t.reports.length} of ${t.expected} workloads reported their verification`);
    for (const v of t.reports) {
      if (v.badWords) failures.push(`${v.workload === 'cache' ? 'the cache' : `task ${v.taskId} (${v.workload})`}: ${v.badWords} of ${v.wordsChecked} words wrong (first at word ${v.firstBad})`);
    }
  }
  return { verdict: failures.length ? 'fail' : 'pass', failures, against: seen.against, frames: f, memory: mem, cpu: seen.cpu, tasks: seen.tasks };
}

/** The image's pages against the frames the oracle says had to be saved. */
export function checkImagePages(oracle: Oracle, imageWords: Uint32Array): FrameCheck {
  const must = oracle.mustSave();
  const missingPages: FrameRef[] = [];
  const extraPages: FrameRef[] = [];
  let mustSave = 0;
  let imagePages = 0;
  for (let w = 0; w < must.length; w++) {
    const want = must[w]!;
    const got = w < imageWords.length ? imageWords[w]! : 0;
    mustSave += popcount(want);
    imagePages += popcount(got);
    let diff = (want ^ got) >>> 0;
    while (diff) {
      const bit = 31 - Math.clz32(diff & -diff);
      diff = (diff & (diff - 1)) >>> 0;
      const pfn = w * 32 + bit;
      const into = (want >>> bit) & 1 ? missingPages : extraPages;
      if (into.length < LIST_LIMIT) into.push(oracle.frame(pfn));
    }
  }
  for (let w = must.length; w < imageWords.length; w++) {
    // Beyond the guest's frames: impossible for a validated image, still counted.
    let x = imageWords[w]!;
    imagePages += popcount(x);
    while (x) {
      const bit = 31 - Math.clz32(x & -x);
      x = (x & (x - 1)) >>> 0;
      if (extraPages.length < LIST_LIMIT) extraPages.push({ pfn: w * 32 + bit, owner: 'not RAM' });
    }
  }
  return { mustSave, imagePages, hibernationFrames: oracle.hibernationFrames(), missingPages, extraPages };
}

/** Every listed frame of RAM now against the oracle's expected bytes. */
function comparePages(m: Machine, oracle: Oracle, pfns: Uint32Array): { pagesCompared: number; differingPages: PageDifference[] } {
  const ram = m.ram;
  const differingPages: PageDifference[] = [];
  let compared = 0;
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    const want = oracle.expectedPage(pfn);
    if (!want) continue; // not to be saved at all: an extra page, listed as such
    compared++;
    const got = ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    if (Buffer.compare(got, want) !== 0) {
      let off = 0;
      while (off < PAGE_SIZE && got[off] === want[off]) off++;
      if (differingPages.length < LIST_LIMIT) differingPages.push({ pfn, owner: oracle.owner(pfn), offset: off, expected: want[off]!, actual: got[off]! });
    }
  }
  return { pagesCompared: compared, differingPages };
}

/** Every saved frame of RAM now against its page's CRC in the image (no oracle at hand). */
function comparePageCrcs(m: Machine, image: ValidatedImage): { pagesCompared: number; differingPages: PageDifference[] } {
  const ram = m.ram;
  const crcs = new Uint32Array(1);
  const differingPages: PageDifference[] = [];
  for (let i = 0; i < image.pfns.length; i++) {
    const pfn = image.pfns[i]!;
    crc32Pages(ram.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE), crcs, 0);
    if (crcs[0] !== image.crcs[i] && differingPages.length < LIST_LIMIT) differingPages.push({ pfn, owner: 'unknown', offset: -1, expected: image.crcs[i]!, actual: crcs[0]! });
  }
  return { pagesCompared: image.pfns.length, differingPages };
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
