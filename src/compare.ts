/**
 * A comparison: one cycle for every combination of save strategy × restore strategy ×
 * workload × RAM size × seed, each judged by the oracle (`hiberlab compare`). The cells
 * run one after the other (every cycle uses the cores it can get).
 */
import { runCycle, type CycleOptions, type CycleReport } from './cycle.ts';
import { errorCode } from './errors.ts';
import type { GivenOptions } from './declarations.ts';

export interface CompareAxes {
  readonly saves: readonly string[];
  readonly restores: readonly string[];
  readonly workloads: readonly string[];
  readonly ramBytes: readonly number[];
  readonly seeds: readonly number[];
}

export interface CompareCell {
  readonly save: string;
  readonly restore: string;
  readonly workload: string;
  readonly ramBytes: number;
  readonly seed: number;
  /** The cycle's report, when it ran. */
  readonly report?: CycleReport;
  /** Why it could not run (a refused hibernation, a dead guest). */
  readonly error?: { readonly code: string; readonly message: string };
  readonly verdict: 'pass' | 'fail';
  readonly wallMs: number;
}

export interface CompareOptions extends Omit<CycleOptions, 'save' | 'restore' | 'workload' | 'ramBytes' | 'seed' | 'saveOptions' | 'restoreOptions'> {
  /** Options per save strategy, by name. */
  readonly saveOptions?: Readonly<Record<string, GivenOptions>>;
  /** Options per restore strategy, by name. */
  readonly restoreOptions?: Readonly<Record<string, GivenOptions>>;
  /** Called before each cell (index from 0) and after the last. */
  readonly onCell?: (done: number, total: number, next?: Omit<CompareCell, 'verdict' | 'wallMs'>) => void;
}

/** Every cell of the matrix, in axis order (save outermost, seed innermost). */
export function matrix(axes: CompareAxes): Array<Omit<CompareCell, 'verdict' | 'wallMs' | 'report' | 'error'>> {
  const out = [];
  for (const save of axes.saves)
    for (const restore of axes.restores)
      for (const workload of axes.workloads)
        for (const ramBytes of axes.ramBytes)
          for (const seed of axes.seeds) out.push({ save, restore, workload, ramBytes, seed });
  return out;
}

/** Runs every cell; a cell that cannot run is a failed cell with the error's code, never an exception. */
export async function runCompare(axes: CompareAxes, options: CompareOptions = {}): Promise<CompareCell[]> {
  const cells = matrix(axes);
  const out: CompareCell[] = [];
  for (const [i, cell] of cells.entries()) {
    options.onCell?.(i, cells.length, cell);
    const t0 = performance.now();
    try {
      const report = await runCycle({
        ...options, ...cell,
        saveOptions: options.saveOptions?.[cell.save], restoreOptions: options.restoreOptions?.[cell.restore],
      });
      out.push({ ...cell, report, verdict: report.verdict, wallMs: performance.now() - t0 });
    } catch (err) {
      out.push({ ...cell, error: { code: errorCode(err), message: err instanceof Error ? err.message : String(err) }, verdict: 'fail', wallMs: performance.now() - t0 });
    }
  }
  options.onCell?.(cells.length, cells.length);
  return out;
}
