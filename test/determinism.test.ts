import { describe, expect, it } from 'vitest';
import { hibernate } from '../src/cycle.ts';
import { guestImage, MiB, sha256File, tempSwapPath } from './helpers.ts';

describe('deterministic mode (virtual clock, JIT off)', () => {
  it('two runs with the same inputs give identical hypercall/IRQ traces and byte-identical images', async () => {
    const run = async () => {
      const path = tempSwapPath('det');
      const h = await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@200,stream:1M@100,cache:1M', seed: 9, deterministic: true, warmupMs: 80, image: guestImage(), imagePath: path });
      return { trace: h.trace, image: sha256File(path), instructions: h.oracle!.instructions, pages: h.save.pagesSaved };
    };
    const a = await run();
    const b = await run();
    // The trace is real: timer interrupts interleaved with the boot, READY, the pm protocol and the atomic point.
    expect(a.trace.filter((e) => e.what === 'irq0').length).toBeGreaterThanOrEqual(8);
    expect(a.trace.map((e) => e.what)).toEqual(expect.arrayContaining(['BOOT_INFO', 'READY', 'PM_NEXT', 'ATOMIC', 'POWER_OFF']));
    expect(b.trace).toEqual(a.trace);
    expect(b.instructions).toBe(a.instructions);
    expect(b.pages).toBe(a.pages);
    expect(b.image).toBe(a.image);
  });

  it('a different seed gives a different image (the comparison above can fail)', async () => {
    const path1 = tempSwapPath('seed1');
    const path2 = tempSwapPath('seed2');
    const opts = { ramBytes: 32 * MiB, workload: 'churn:1M@200', deterministic: true, warmupMs: 30, image: guestImage() } as const;
    await hibernate({ ...opts, seed: 1, imagePath: path1 });
    await hibernate({ ...opts, seed: 2, imagePath: path2 });
    expect(sha256File(path1)).not.toBe(sha256File(path2));
  });
});
