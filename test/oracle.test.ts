/**
 * The oracle's own tests: strategies broken on purpose, registered through the public
 * API as a user's would be, each caught by exactly the rule it breaks. Each test fails
 * if its rule is taken out of the oracle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  abi, bitmapPbe, declareOptions, declareStats, defineRestoreStrategy, defineSaveStrategy, PAGE_SIZE, registerRestoreStrategy, registerSaveStrategy, runCycle,
  unregisterStrategy, type SaveSession,
} from 'hiberlab';
import { expectPass, guestImage, MiB, tempSwapPath } from './helpers.ts';
import { stopAndWrite } from '../docs/examples/stop-and-write.ts';
import { describeOracleFailure } from 'hiberlab/vitest';

/**
 * A save like the docs' stop-and-write (the guest stands while its frames are written),
 * broken by `pages` (which frames make the image) or `before` (what happens before the
 * atomic point).
 */
function brokenSave(name: string, how: { pages?: (session: SaveSession) => Uint32Array; writeBeforeAtomicPoint?: boolean }) {
  return defineSaveStrategy({
    name,
    description: `broken on purpose: ${name}`,
    origin: 'test/oracle.test.ts',
    options: declareOptions({}),
    stats: declareStats({}),
    async save(session) {
      const pfns = how.pages ? how.pages(session) : session.saveablePfns();
      const image = await session.openImage(pfns);
      const write = async () => {
        for (let i = 0; i < pfns.length; i++) image.write(i, session.machine.view(pfns[i]! * PAGE_SIZE, PAGE_SIZE));
      };
      // Written while the guest still runs, with nothing to catch the writes that follow.
      if (how.writeBeforeAtomicPoint) {
        await write();
        await session.guest.runTicks(10);
      }
      await session.freeze();
      await session.atomic(async (atomicPoint) => {
        atomicPoint();
        if (!how.writeBeforeAtomicPoint) await write();
      });
      return { image: await session.commit(image), atomicCopyPages: 0, stats: {} };
    },
  });
}

/** bitmap-pbe, but the trampoline gets a copy of the saved context with CR2 changed. */
const wrongRegister = defineRestoreStrategy({
  ...bitmapPbe,
  name: 'broken-wrong-cr2',
  description: 'broken on purpose: hands the trampoline a saved context whose CR2 differs',
  async load(ctx, plan) {
    const load = await bitmapPbe.load(ctx, plan);
    const alloc = ctx.guest.allocator;
    const [frame] = alloc.allocFrames(1, abi.OWNERS.SNAPSHOT.value)!;
    const bytes = ctx.image.header.context.bytes.slice();
    const cr2 = abi.STRUCTS.saved_context.fields.find((f) => f.name === 'cr2')!.offset;
    new DataView(bytes.buffer).setUint32(cr2, 0xdeadb000, true);
    ctx.guest.machine.write(frame! * PAGE_SIZE, bytes);
    return { ...load, decision: { ...load.decision, context: frame! * PAGE_SIZE } };
  },
});

const leaveOutCache = brokenSave('broken-no-cache', {
  pages: (s) => s.saveablePfns().filter((pfn) => s.allocator.owner(pfn) !== abi.OWNERS.CACHE.value),
});
const afterAtomicPoint = brokenSave('broken-too-early', { writeBeforeAtomicPoint: true });
/** Every saveable page, and the lowest free frame too. */
let extraFrame = -1;
const extraPage = brokenSave('broken-extra-page', {
  pages: (s) => {
    const pfns = s.saveablePfns();
    extraFrame = 0;
    while (s.allocator.isUsed(extraFrame)) extraFrame++;
    return Uint32Array.from([...pfns, extraFrame]).sort();
  },
});

beforeAll(() => {
  for (const s of [leaveOutCache, afterAtomicPoint, extraPage, stopAndWrite]) registerSaveStrategy(s);
  registerRestoreStrategy(wrongRegister);
});
afterAll(() => {
  for (const s of [leaveOutCache, afterAtomicPoint, extraPage, stopAndWrite]) unregisterStrategy('save', s.name);
  unregisterStrategy('restore', wrongRegister.name);
});

const cycle = (save: string, restore = 'bitmap-pbe', workload = 'churn:1M@500,cache:4M') =>
  runCycle({ ramBytes: 32 * MiB, workload, seed: 3, save, restore, image: guestImage(), imagePath: tempSwapPath(save), warmupMs: 50 });

describe('the oracle catches a broken strategy by the rule it breaks', () => {
  it('a page left out: the 1024 cache pages are listed as missing, with their owner', async () => {
    const r = await cycle('broken-no-cache');
    expect(r.verdict).toBe('fail');
    const missing = r.oracle.frames!.missingPages;
    expect(missing).toHaveLength(1024);
    expect(new Set(missing.map((p) => p.owner))).toEqual(new Set(['cache']));
    expect(r.oracle.frames!.extraPages).toEqual([]);
    expect(r.failures.some((f) => /^1024 pages in use at the atomic point are missing from the image: 0x[0-9a-f]+ \(cache\)/.test(f))).toBe(true);
    // The pages it did save are right, and the CPU came back: only the page set is wrong.
    expect(r.oracle.memory!.differingPages).toEqual([]);
    expect(r.oracle.cpu!.differences).toEqual([]);
    // What a CI user's toPassOracle() says: the missing pages with owners, the failed workload, the console.
    const message = describeOracleFailure(r);
    expect(message).toMatch(/1024 page\(s\) missing from the image:\n {4}PFN 0x[0-9a-f]+ \(cache\)/);
    expect(message).toMatch(/the cache: \d+ of \d+ words bad/);
    expect(message).toContain('guest console (last lines):');
    expect(() => expect(r).toPassOracle()).toThrow(/missing from the image/);
  });

  it('a page from after the atomic point: the pages the churn wrote since are listed as differing, with their owner', async () => {
    const r = await cycle('broken-too-early');
    expect(r.verdict).toBe('fail');
    const differ = r.oracle.memory!.differingPages;
    expect(differ.length).toBeGreaterThan(0);
    expect(differ.some((d) => d.owner.startsWith('task '))).toBe(true);
    expect(r.failures.some((f) => /saved pages differ from the oracle after the restore/.test(f))).toBe(true);
    expect(r.oracle.frames!.missingPages).toEqual([]);
    expect(r.oracle.frames!.extraPages).toEqual([]);
  });

  it('an extra page: a frame free at the atomic point is listed as extra, with its owner', async () => {
    const r = await cycle('broken-extra-page');
    expect(r.verdict).toBe('fail');
    expect(r.oracle.frames!.extraPages).toEqual([{ pfn: extraFrame, owner: 'free' }]);
    expect(r.oracle.frames!.missingPages).toEqual([]);
    expect(r.failures.some((f) => f.startsWith('1 pages in the image were not in use at the atomic point'))).toBe(true);
  });

  it('a wrong register: CR2 differs when control comes back, and nothing else does', async () => {
    const r = await cycle('swsusp', 'broken-wrong-cr2');
    expect(r.verdict).toBe('fail');
    expect(r.oracle.cpu!.differences).toEqual([{ field: 'cr2', expected: r.oracle.cpu!.differences[0]!.expected, actual: 0xdeadb000 }]);
    expect(r.oracle.cpu!.differences[0]!.expected).not.toBe(0xdeadb000);
    expect(r.oracle.memory!.differingPages).toEqual([]);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatch(/^CPU context differs when control came back: cr2: 0x[0-9a-f]{8} at the atomic point, 0xdeadb000 when control came back$/);
  });
});

describe('a strategy of your own, registered through the public API', () => {
  it('stop-and-write (docs/examples) passes the complete oracle, cache included', async () => {
    const r = await cycle('stop-and-write');
    expectPass(r);
    expect(r.save.atomicCopyPages).toBe(0);
    expect(r.save.snapshotFrames).toBe(0);
    expect(r.save.stats.runs).toBeGreaterThan(0);
  });
});

describe('every built-in save strategy passes the complete oracle, cache in the workload', () => {
  for (const save of ['swsusp', 'wp-full', 'cow']) {
    for (const [ram, workload] of [[32, 'churn:1M@500,stream:2M,cache:4M'], [128, 'churn:8M@2000,stream:8M,cache:24M']] as const) {
      it(`${save}, ${ram} MiB, ${workload}`, async () => {
        const r = await runCycle({ ramBytes: ram * MiB, workload, seed: 21, save, image: guestImage(), imagePath: tempSwapPath(save), warmupMs: 50 });
        expectPass(r);
        expect(r.verify.map((v) => v.workload)).toEqual(['cache', 'churn', 'stream']);
        expect(r.oracle.frames!.mustSave).toBe(r.save.pagesSaved);
        // wp-full's image carries the page tables without the tracker's read-only bits; the
        // oracle derives that from the guest's own permissions, and only for wp-full.
        const derived = r.oracle.memory!.derived!;
        if (save === 'wp-full') expect(derived.writeBitsRestored).toBeGreaterThan(0);
        else expect(derived.writeBitsRestored).toBe(0);
      });
    }
  }
});
