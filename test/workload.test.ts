/** The workload spec: what the CLI and the library take, and the guest's wl= word made from it. */
import { describe, expect, it } from 'vitest';
import { formatWorkload, parseWorkloadSpec, workloadCmdline } from '../src/machine/workload.ts';

describe('workload specs', () => {
  it('reads sizes, rates, percentages of RAM and caches read at boot', () => {
    const specs = parseWorkloadSpec('churn:4M@2000, stream:25%,cache:8M@boot', 64 << 20);
    expect(specs).toEqual([
      { kind: 'churn', bytes: 4 << 20, rate: 2000 },
      { kind: 'stream', bytes: 16 << 20, rate: 0 },
      { kind: 'cache', bytes: 8 << 20, rate: 0, atBoot: true },
    ]);
    expect(workloadCmdline(specs)).toBe('wl=churn:4194304@2000,stream:16777216,cache:8388608@boot');
    expect(formatWorkload(specs)).toBe('churn:4M@2000,stream:16M,cache:8M@boot');
    expect(parseWorkloadSpec(formatWorkload(specs))).toEqual(specs);
    expect(workloadCmdline(parseWorkloadSpec('churn:1M,helper'))).toBe('wl=churn:1048576,helper');
  });

  it('refuses what the guest could not do, saying what is wrong', () => {
    expect(() => parseWorkloadSpec('churn:1M@boot')).toThrow(/only a cache is read at boot \("churn:1M@boot"\)/);
    expect(() => parseWorkloadSpec('cache:1M@5')).toThrow(/"cache" takes no rate \(but @boot\)/);
    expect(() => parseWorkloadSpec('churn')).toThrow(/needs a size/);
    expect(() => parseWorkloadSpec('helper:1M')).toThrow(/"helper" takes no size or rate/);
    expect(() => parseWorkloadSpec('swap:1M')).toThrow(/unknown workload kind "swap"/);
    expect(() => parseWorkloadSpec('cache:1M@later')).toThrow(/cannot read workload "cache:1M@later"/);
  });
});
