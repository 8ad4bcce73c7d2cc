/**
 * Workload specifications: what the guest's tasks do to memory.
 *
 * Syntax (CLI `--workload` and the library): comma-separated items, each
 * `KIND[:SIZE][@RATE]` where KIND is churn, stream, cache, idle or helper; SIZE is bytes with
 * an optional K/M/G suffix (binary) or a percentage of RAM (`40%`); RATE is writes per
 * millisecond of guest time (churn/stream; omitted = as fast as the CPU allows).
 * `cache:SIZE@boot` is a cache the kernel reads while it boots, before RESUME_CHECK, so
 * a boot kernel booted with the same command line has the same pages. `helper` is
 * kwriter, a freezable task a save may thaw alone (two-pageset does, to write).
 * Example: `churn:4M@2000,stream:8M,cache:8M`.
 */
import { HiberlabError } from '../errors.ts';
import { PAGE_SIZE } from '../units.ts';

export type WorkloadKind = 'churn' | 'stream' | 'cache' | 'idle' | 'helper';

export interface WorkloadSpec {
  readonly kind: WorkloadKind;
  /** Bytes of buffer (whole pages). */
  readonly bytes: number;
  /** Writes per millisecond; 0 = unlimited. */
  readonly rate: number;
  /** cache@boot: created while the kernel boots, before RESUME_CHECK. */
  readonly atBoot?: boolean;
}

export class WorkloadSpecError extends HiberlabError<'BAD_WORKLOAD', { spec: string }> {
  constructor(message: string, spec = '') {
    super('BAD_WORKLOAD', message, { spec });
  }
}

const KINDS: readonly WorkloadKind[] = ['churn', 'stream', 'cache', 'idle', 'helper'];

/** Parses a size: "4096", "64K", "8M", "1G", "1.5M" (binary units) or "40%" of `ramBytes`. Result is whole pages. */
export function parseSize(text: string, ramBytes?: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG%]?)(?:i?[bB])?$/.exec(text.trim());
  if (!m) throw new WorkloadSpecError(`cannot read size "${text}" (use e.g. 4096, 64K, 8M, 1G or 40%)`);
  const n = Number(m[1]);
  const unit = m[2]!.toUpperCase();
  let bytes: number;
  if (unit === '%') {
    if (ramBytes === undefined) throw new WorkloadSpecError(`size "${text}" is a percentage but the RAM size is unknown`);
    bytes = (ramBytes * n) / 100;
  } else {
    bytes = n * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
  }
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

export function parseWorkloadSpec(text: string, ramBytes?: number): WorkloadSpec[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  return items.map((item) => {
    const m = /^([a-z]+)(?::([^@]+))?(?:@(\d+|boot))?$/.exec(item);
    if (!m) throw new WorkloadSpecError(`cannot read workload "${item}" (expected KIND[:SIZE][@RATE], e.g. churn:4M@2000)`);
    const kind = m[1] as WorkloadKind;
    if (!KINDS.includes(kind)) throw new WorkloadSpecError(`unknown workload kind "${m[1]}" in "${item}" (known: ${KINDS.join(', ')})`);
    if (kind === 'idle' || kind === 'helper') {
      if (m[2] || m[3]) throw new WorkloadSpecError(`"${kind}" takes no size or rate`);
      return { kind, bytes: 0, rate: 0 };
    }
    if (!m[2]) throw new WorkloadSpecError(`workload "${item}" needs a size, e.g. ${kind}:8M`);
    const bytes = parseSize(m[2], ramBytes);
    if (bytes <= 0) throw new WorkloadSpecError(`workload "${item}" has no size`);
    if (m[3] === 'boot') {
      if (kind !== 'cache') throw new WorkloadSpecError(`only a cache is read at boot ("${item}")`);
      return { kind, bytes, rate: 0, atBoot: true };
    }
    if (kind === 'cache' && m[3]) throw new WorkloadSpecError(`"cache" takes no rate (but @boot)`);
    return { kind, bytes, rate: m[3] ? Number(m[3]) : 0 };
  });
}

/** The `wl=` word of the guest command line (empty for no workloads). */
export function workloadCmdline(specs: readonly WorkloadSpec[]): string {
  const items = specs.map((s) => (s.kind === 'idle' || s.kind === 'helper' ? s.kind : `${s.kind}:${s.bytes}${s.atBoot ? '@boot' : s.rate ? `@${s.rate}` : ''}`));
  return items.length ? `wl=${items.join(',')}` : '';
}

export function formatWorkload(specs: readonly WorkloadSpec[]): string {
  const size = (b: number) => (b % (1024 * 1024) === 0 ? `${b / 1024 / 1024}M` : `${Math.round(b / 1024)}K`);
  return specs.map((s) => (s.kind === 'idle' || s.kind === 'helper' ? s.kind : `${s.kind}:${size(s.bytes)}${s.atBoot ? '@boot' : s.rate ? `@${s.rate}` : ''}`)).join(',') || 'idle';
}
