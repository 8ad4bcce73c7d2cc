/**
 * The save catalog beyond swsusp, wp-full and cow: TuxOnIce's two pagesets (Nigel
 * Cunningham, with Kyle Moffett's selective thaw). Every save × every restore runs in
 * test/restore-catalog.test.ts; here, what is particular to each.
 */
import { describe, expect, it } from 'vitest';
import { hibernate, resume, runCycle } from '../src/cycle.ts';
import { inspectImage } from '../src/image/index.ts';
import { GuestExceptionError } from '../src/machine/errors.ts';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';

describe('two-pageset: pageset 2 written first, pageset 1 copied into its frames', () => {
  for (const [ram, workload, seed] of [
    [32, 'churn:2M@500,stream:4M,cache:4M,helper', 1],
    [32, 'idle', 2],
    [128, 'churn:8M@2000,stream:24M,cache:16M', 3],
    [512, 'churn:16M@2000,stream:160M,cache:32M,helper', 4],
  ] as const) {
    it(`${ram} MiB, ${workload}, seed ${seed}: passes the oracle; only pageset 1 is copied, into pageset 2's frames`, async () => {
      const r = await runCycle({ ramBytes: ram * MiB, workload, seed, save: 'two-pageset', image: guestImage(), imagePath: tempSwapPath(`tp-${ram}-${seed}`), warmupMs: 30 });
      expectPass(r);
      const s = r.save.stats as Record<string, number>;
      expect(s.pageset1Pages! + s.pageset2Pages!).toBe(r.save.pagesSaved);
      expect(r.save.atomicCopyPages).toBe(s.pageset1Pages);
      expect(s.pagesWrittenAgain).toBe(0); // nothing that stays frozen wrote into pageset 2
      expect(s.framesFromPageset2! + s.framesFromFree!).toBe(s.pageset1Pages);
      expect(s.framesFromPageset2).toBe(Math.min(s.pageset1Pages!, s.pageset2Pages!));
      if (workload !== 'idle') expect(s.pageset2Pages).toBeGreaterThan(s.pageset1Pages!);
      // The hibernation's own frames: the checksums, and copies beyond pageset 2 only.
      expect(r.save.snapshotFrames).toBe(s.checksumPages! + s.framesFromFree!);
      expect(s.tasksThawed).toBe(workload.includes('helper') ? 1 : 0);
    });
  }

  it('a task thawed on purpose writes into pageset 2 after its write: the checksums catch every changed page, written again at the atomic point', async () => {
    const r = await runCycle({ ramBytes: 32 * MiB, workload: 'churn:1M@2000,stream:4M,cache:4M,helper', seed: 5, save: 'two-pageset', saveOptions: { thawTask: 2 }, image: guestImage(), imagePath: tempSwapPath('tp-thaw'), warmupMs: 30 });
    expectPass(r);
    const s = r.save.stats as Record<string, number>;
    expect(s.tasksThawed).toBe(2);
    expect(s.liveTicks).toBeGreaterThan(0);
    // churn (task 2) rewrote its 1 MiB working set, 256 pages, while pageset 2 was written.
    expect(s.pagesWrittenAgain).toBeGreaterThan(200);
    expect(s.pagesWrittenAgain).toBeLessThanOrEqual(257);
  });

  it('has no half-of-RAM limit: a real save holds over 90 % of RAM, and resumes', async () => {
    const r = await runCycle({ ramBytes: 64 * MiB, workload: 'stream:60M@1', seed: 6, save: 'two-pageset', image: guestImage(), imagePath: tempSwapPath('tp-big'), warmupMs: 20 });
    expectPass(r);
    expect((r.save.pagesSaved * 4096) / (64 * MiB)).toBeGreaterThan(0.9);
    // swsusp refuses the same guest: its copies need as many free frames as pages.
    await expect(hibernate({ ramBytes: 64 * MiB, workload: 'stream:60M@1', seed: 6, save: 'swsusp', image: guestImage(), imagePath: tempSwapPath('sw-big'), warmupMs: 20 })).rejects.toThrow(/cannot hibernate/);
  });
});

describe('suspend-module: a separate writer, all other memory read-only, its own disk driver', () => {
  for (const [ram, workload, seed] of [
    [32, 'churn:2M@500,stream:4M,cache:4M,helper', 11],
    [32, 'idle', 12],
    [128, 'churn:8M@2000,stream:24M,cache:16M', 13],
    [512, 'churn:4M@2000,stream:16M,cache:8M', 14],
  ] as const) {
    it(`${ram} MiB, ${workload}, seed ${seed}: the image the module wrote passes the oracle`, async () => {
      const r = await runCycle({ ramBytes: ram * MiB, workload, seed, save: 'suspend-module', image: guestImage(), imagePath: tempSwapPath(`sm-${ram}-${seed}`), warmupMs: 30 });
      expectPass(r);
      const s = r.save.stats as Record<string, number | string>;
      expect(s.pagesWritten).toBe(r.save.pagesSaved);
      expect(r.save.atomicCopyPages).toBe(0); // nothing is copied: the module writes the frames where they are
      expect(s.extents).toBe(1);
      expect(s.guestInstructions).toBeGreaterThan(r.save.pagesSaved * 1024); // a CRC and 4 KiB of port I/O a page, in the guest
      expect(s.wroteGuestTime).toMatch(/^Wrote \d+ kbytes in \d+\.\d\d seconds \(\d+\.\d\d MB\/s\)$/);
      expect(s.wroteHostTime).toMatch(/^Wrote \d+ kbytes in \d+\.\d\d seconds \(\d+\.\d\d MB\/s\)$/);
      expect(r.save.snapshotFrames).toBe((s.moduleFrames as number) + 1); // and the harness's page of build id and name
    });
  }

  it('writes through a fragmented sector list, which the image records as its swap map, showing its progress every 10 %; the image resumes', async () => {
    const path = tempSwapPath('sm-frag');
    let console = '';
    const h = await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500,stream:4M,cache:2M', seed: 15, save: 'suspend-module', saveOptions: { fragments: 16 }, image: guestImage(), imagePath: path, warmupMs: 30, onConsole: (t) => (console += t) });
    expect((h.save.stats as Record<string, number>).extents).toBe(17); // the signature and header where they are, then 16
    expect(console.match(/^suspend module: \d+%$/gm)).toEqual(Array.from({ length: 10 }, (_, i) => `suspend module: ${(i + 1) * 10}%`));
    expect(inspectImage(path).header!.extents.length).toBe(17);
    const r = await resume({ imagePath: path, oracle: h.oracle, image: guestImage(), verifyReportsExpected: h.verifyReportsExpected });
    expect(r.check!.failures).toEqual([]);
    expect(r.check!.verdict).toBe('pass');
  });

  it('cannot change system memory: a planted stray write faults in the module, named by page and EIP, and no image is left', async () => {
    const path = tempSwapPath('sm-stray');
    let err: unknown;
    try {
      await hibernate({ ramBytes: 32 * MiB, workload: 'churn:1M@500,stream:2M', seed: 16, save: 'suspend-module', saveOptions: { strayWrite: true }, image: guestImage(), imagePath: path, warmupMs: 30 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuestExceptionError);
    const e = err as GuestExceptionError;
    expect(e.message).toMatch(/^guest exception: page fault \(#PF\) outside any task \(the suspend module\) at EIP 0xf000[0-9a-f]{4}, CR2 0x[0-9a-f]{8} \(page 0x[0-9a-f]+\), error code 0x00000003 \(protection violation, write, kernel mode\)/);
    expect(e.facts.eip).toBeGreaterThanOrEqual(0xf0000000);
    expect(e.facts.cr2).toBeGreaterThanOrEqual(0x100000); // a kernel page: read-only to the module
    expect(e.facts.cr2).toBeLessThan(0x200000);
    expect(inspectImage(path).signature.kind).toBe('swap'); // the signature is written last: never reached
  });
});
