/**
 * stop-and-write: a complete save strategy in one file (docs/ADDING-A-STRATEGY.md).
 *
 * Freeze the tasks, enter the atomic section, and write every saveable page straight
 * from its own frame while the guest stands still; commit; power off. This is how a
 * hypervisor saves a stopped virtual machine (QEMU's savevm): no atomic copy, so no
 * half-of-RAM limit and no frames taken, but the guest stands for the whole write.
 */
import { declareOptions, declareStats, defineSaveStrategy, PAGE_SIZE, runsOfWords } from 'hiberlab';

export const stopAndWrite = defineSaveStrategy({
  name: 'stop-and-write',
  description: 'freeze, stop the CPU, write every saveable page straight from its frame, power off',
  origin: 'how a hypervisor saves a stopped virtual machine (QEMU savevm)',
  options: declareOptions({}),
  stats: declareStats({
    runs: { kind: 'count', help: 'runs of consecutive frames written' },
  }),
  async save(session) {
    await session.freeze();
    // The session knows which pages the image must hold: every frame in use, less the
    // hibernation's own and the holes in the memory map.
    const words = session.saveableWords();
    const image = await session.openImage(session.saveablePfns());
    let runs = 0;
    await session.atomic(async (atomicPoint) => {
      atomicPoint();
      // The guest is stopped until the last page is written: the frames are the image.
      const parts: Uint8Array[] = [];
      const r = runsOfWords(words, session.allocator.frameCount);
      for (let i = 0; i < r.length; i += 2) parts.push(session.machine.view(r[i]! * PAGE_SIZE, r[i + 1]! * PAGE_SIZE));
      runs = parts.length;
      await image.writeRuns(0, parts);
    });
    const written = await session.commit(image);
    return { image: written, atomicCopyPages: 0, stats: { runs } };
  },
});
