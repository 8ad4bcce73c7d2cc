import { describe, expect, it } from 'vitest';
import { runFaults } from '../src/mmu/fault-run.ts';
import { guestImage, MiB } from './helpers.ts';

describe('deterministic mode and write protection', () => {
  it('the same run twice gives identical fault traces (PFN, EIP, CR2, task, guest time and instruction count of every fault)', async () => {
    const run = () =>
      runFaults({
        ramBytes: 32 * MiB, image: guestImage(), workload: 'churn:512K@1000,stream:256K@1000', seed: 4, policy: 'dirty-track',
        durationMs: 60, intervalMs: 20, warmupMs: 20, deterministic: true, baseline: false, trace: true,
      });
    const a = await run();
    const b = await run();
    expect(a.faults.total).toBeGreaterThan(100);
    expect(a.trace).toHaveLength(a.faults.total);
    expect([...new Set(a.trace!.map((e) => e.taskId))]).toEqual(expect.arrayContaining([2, 3]));
    // Instruction counts inside the handler are live, not the lagging per-main_loop count.
    const instr = a.trace!.map((e) => e.instructions);
    expect(instr.every((n, i) => i === 0 || n >= instr[i - 1]!)).toBe(true);
    expect(new Set(instr).size).toBeGreaterThan(a.trace!.length / 2);
    expect(b.trace).toEqual(a.trace);
    const { perWallSecond: _wa, ...fa } = a.faults; // host time differs, the rest must not
    const { perWallSecond: _wb, ...fb } = b.faults;
    expect(fb).toEqual(fa);
    expect(b.protectedRun.instructions).toBe(a.protectedRun.instructions);
    expect(b.verify).toEqual(a.verify);
    expect(a.verify.every((v) => v.badWords === 0)).toBe(true);
  });
});
