/**
 * hiberlab in a vitest suite (`import ... from 'hiberlab/vitest'`): runCycle and the
 * `toPassOracle` matcher, registered with vitest's `expect` when this module is imported.
 *
 *   const report = await runCycle({ ramBytes: 32 << 20, workload: 'churn:1M@500' });
 *   expect(report).toPassOracle();
 *
 * The matcher passes when the cycle's verdict is 'pass'; otherwise its message lists the
 * report's failures, the pages that differ from the oracle and the tasks that found bad
 * words in their own data.
 */
import { expect } from 'vitest';
import type { CycleReport } from '../src/cycle.ts';

export { runCycle, type CycleReport } from '../src/cycle.ts';

declare module 'vitest' {
  interface Matchers<T = any> {
    /** The hibernate cycle's report has verdict 'pass' (the oracle and every task agree). */
    toPassOracle(): T;
  }
}

/** Differing pages and bad tasks listed in a failure message; the rest are counted. */
const LISTED = 10;

/** What toPassOracle says about a report that did not pass. */
export function describeOracleFailure(report: CycleReport): string {
  const lines = [`expected the hibernate cycle to pass, but its verdict is '${report.verdict}'`];
  for (const failure of report.failures ?? []) lines.push(`  failure: ${failure}`);
  const list = (title: string, pages: readonly { pfn: number; owner: string }[] | undefined) => {
    if (!pages?.length) return;
    lines.push(`  ${pages.length} page(s) ${title}:`);
    for (const d of pages.slice(0, LISTED)) lines.push(`    PFN 0x${d.pfn.toString(16)} (${d.owner})`);
    if (pages.length > LISTED) lines.push(`    … and ${pages.length - LISTED} more`);
  };
  list('missing from the image', report.oracle?.frames?.missingPages);
  list('in the image but not in use at the atomic point', report.oracle?.frames?.extraPages);
  list('differ from the oracle', report.oracle?.memory?.differingPages);
  for (const d of report.oracle?.cpu?.differences ?? []) lines.push(`  CPU ${d.field}: expected 0x${d.expected.toString(16)}, got 0x${d.actual.toString(16)}`);
  const bad = (report.verify ?? []).filter((v) => v.badWords > 0);
  if (bad.length) {
    lines.push(`  ${bad.length} workload(s) found bad words in their data:`);
    for (const v of bad.slice(0, LISTED)) {
      const who = v.workload === 'cache' ? 'the cache' : `task ${v.taskId} (${v.workload})`;
      lines.push(`    ${who}: ${v.badWords} of ${v.wordsChecked} words bad${v.firstBad === undefined ? '' : `, the first at word ${v.firstBad}`}`);
    }
    if (bad.length > LISTED) lines.push(`    … and ${bad.length - LISTED} more`);
  }
  if (report.consoleTail) lines.push('  guest console (last lines):', ...report.consoleTail.split('\n').map((l) => `    ${l}`));
  return lines.join('\n');
}

expect.extend({
  toPassOracle(received: unknown) {
    const report = received as CycleReport | undefined;
    if (typeof report !== 'object' || report === null || !('verdict' in report)) {
      return { pass: false, message: () => `expected a hiberlab CycleReport (from runCycle), got ${String(received)}` };
    }
    const pass = report.verdict === 'pass';
    return {
      pass,
      message: () => (pass ? 'expected the hibernate cycle not to pass, but its verdict is \'pass\'' : describeOracleFailure(report)),
    };
  },
});
