/**
 * suspend-module: Maxim Levitsky's proposal (LKML, June 2010): "a kind of self-contained
 * very small operation system that will know to do just one thing, write the memory to
 * disk". The only save whose I/O is the guest's own: the harness writes nothing.
 *
 *   freeze → the kernel (guest/suspend.c): the module loaded into frames of its own, the
 *   list of memory areas to save, the list of the image's disk sectors, a scratch space,
 *   page tables with everything read-only but the module, its lists and its scratch;
 *   every interrupt masked → the atomic point, and into the module (guest/smod/): every
 *   page with its CRC32, the metadata, the header and the signature last, through its
 *   own polling ATA driver on the listed sectors, progress on the console every 10 % →
 *   back to the kernel, which powers off.
 *
 *   frames: [saved as they are, read-only to the module][module | lists | scratch |
 *   page tables: the hibernation's own, never in the image][free]
 *
 * The memory the image holds is the memory at the moment the kernel jumped into the
 * module: nothing else runs, and the module cannot write anything else (a planted stray
 * write faults, `strayWrite`). With `fragments` the image's sectors are scattered as a
 * fragmented swap file's blocks are; the image's swap map records where. With `compress`
 * the module compresses every page with LZ4 into its scratch space and writes them packed
 * (the proposal's "optionally compresses"; image compression LZ4, docs/IMAGE-FORMAT.md).
 */
import { performance } from 'node:perf_hooks';
import { CONSTANTS, OWNERS } from '../abi.ts';
import { declareOptions, declareStats } from '../declarations.ts';
import { validateImage } from '../image/index.ts';
import { COMPRESSION, MAX_EXTENTS, ZERO_STATS, metadataBytesPerPage } from '../image/layout.ts';
import { ProtocolError } from '../machine/errors.ts';
import { countBits } from '../pages/page-set.ts';
import { PAGE_SIZE, speedLine } from '../units.ts';
import { defineSaveStrategy } from './strategy.ts';

export const suspendModule = defineSaveStrategy({
  name: 'suspend-module',
  description: 'the kernel hands control, at the atomic point, to a small separate writer that sees all other memory read-only and writes the image through its own polling disk driver',
  origin: 'Maxim Levitsky, the "suspend module" proposal, LKML June 2010',
  options: declareOptions({
    fragments: {
      kind: 'integer', default: 1, min: 1, max: MAX_EXTENTS - 1,
      help: "the image's sectors after its header in this many extents, placed in reverse order as a fragmented swap file's blocks (1: contiguous, a partition); the image's swap map records them",
    },
    compress: { kind: 'boolean', default: false, help: 'compress every page with LZ4 into the scratch space and write the pages packed (a page LZ4 cannot shrink is stored whole)' },
    strayWrite: { kind: 'boolean', default: false, help: 'plant one write into read-only memory in the module, halfway through: it faults, and the save fails naming the page and the EIP (the module\'s isolation)' },
  }),
  stats: declareStats({
    pagesWritten: { kind: 'pages', help: 'pages the module wrote (the image)' },
    storedBytes: { kind: 'bytes', help: 'bytes of page data on the disk: pages x 4096, or with compress the packed LZ4 blocks' },
    storedPercent: { kind: 'count', help: 'storedBytes as a percentage of the pages\' own size (100 without compress)' },
    extents: { kind: 'count', help: "extents of the image's sector list (1: contiguous)" },
    moduleFrames: { kind: 'pages', help: "frames the kernel took for the module, its lists, its scratch space and its page tables (the hibernation's own)" },
    guestMs: { kind: 'ms', help: "the module's run in guest time (the virtual clock in deterministic mode, else wall time)" },
    hostMs: { kind: 'ms', help: "the module's run in host time" },
    guestInstructions: { kind: 'count', help: 'guest instructions the module ran' },
    wroteGuestTime: { kind: 'text', help: "the module's write in Linux's words, in guest time" },
    wroteHostTime: { kind: 'text', help: "the module's write in Linux's words, in host time" },
  }),

  async save(session, o) {
    const { guest } = session;
    const alloc = session.allocator;
    await session.freeze();
    // Room for the module's frames: about the metadata, a few pages of lists and the
    // page tables (RAM / 4 MiB); the kernel counts exactly and says if it is short.
    const perPage = metadataBytesPerPage(o.compress ? COMPRESSION.LZ4 : COMPRESSION.NONE);
    const estimate = () => Math.ceil((countBits(session.saveableWords()) * perPage) / PAGE_SIZE) + 16 + Math.ceil(alloc.frameCount / 1024) + 24 + (o.compress ? 24 : 0);
    await session.time('prepare', () =>
      session.makeRoom(estimate, (needed, free) => `cannot hibernate: the suspend module needs about ${needed} free frames (module, lists, scratch, page tables), only ${free} are free`),
    );
    // What only the harness knows: the build id of the guest and the strategy's name.
    const ident = alloc.allocFrames(1, OWNERS.SNAPSHOT.value);
    if (!ident) throw new ProtocolError('allocator ran short after the free count said it would not');
    const identBytes = new Uint8Array(64);
    identBytes.set(Buffer.from(session.machine.options.image.buildId, 'hex'), 0);
    identBytes.set(Buffer.from('suspend-module', 'latin1'), 32);
    session.machine.write(ident[0]! * PAGE_SIZE, identBytes);
    const before = countOwnerFrames(alloc.owners);
    let moduleFrames = 0;
    const t0 = performance.now();
    const run = await session.atomicWith((atomicPoint) =>
      guest.suspendModule(
        { flags: (o.strayWrite ? CONSTANTS.SMOD_STRAY_WRITE.value : 0) | (o.compress ? CONSTANTS.SMOD_COMPRESS.value : 0), fragments: o.fragments, ident: ident[0]! * PAGE_SIZE, frozen: session.tasksFrozen },
        () => {
          moduleFrames = countOwnerFrames(alloc.owners) - before;
          atomicPoint();
        },
      ),
    );
    if ('refused' in run) {
      const why = SMOD_ERRORS[run.refused] ?? `result ${run.refused}`;
      return session.refuse(`cannot hibernate with the suspend module: ${why}`, { result: run.refused });
    }
    session.downtime = session.endDowntime();
    session.writeMs = performance.now() - t0;
    // The module wrote the image; read back what it says (the resume checks it all again).
    const image = validateImage(session.swap, { buildId: session.machine.options.image.buildId, ramBytes: session.machine.ramBytes });
    // Linux counts what it wrote in pages, compressed or not ("Wrote N kbytes"); storedBytes says what went on the disk.
    const bytes = image.pfns.length * PAGE_SIZE;
    const stored = image.header.dataBytes;
    return {
      image: {
        imageBytes: image.imageBytes, pageCount: image.pfns.length, headerCrc: image.header.headerCrc, metadataCrc: image.header.metadataCrc,
        pageBytesWritten: bytes, directPageBytes: 0, rewrittenPages: 0, stats: { ...ZERO_STATS, frozenTasks: session.tasksFrozen },
      },
      atomicCopyPages: 0,
      stats: {
        pagesWritten: image.pfns.length, storedBytes: stored, storedPercent: bytes ? Math.round((1000 * stored) / bytes) / 10 : 100, extents: Math.max(1, image.header.extents.length / 2), moduleFrames,
        guestMs: Math.round(run.guestMs * 10) / 10, hostMs: Math.round(run.hostMs * 10) / 10, guestInstructions: run.instructions,
        wroteGuestTime: speedLine('Wrote', bytes, run.guestMs), wroteHostTime: speedLine('Wrote', bytes, run.hostMs),
      },
    };
  },
});

const SMOD_ERRORS: Record<number, string> = {
  [CONSTANTS.SMOD_ERR_NO_DISK.value]: 'the guest has no disk',
  [CONSTANTS.SMOD_ERR_DISK_TOO_SMALL.value]: 'the image would not fit on the swap device',
  [CONSTANTS.SMOD_ERR_FRAGMENTS.value]: `more fragments than the image's swap map holds (${MAX_EXTENTS - 1})`,
  [CONSTANTS.SMOD_ERR_MEMORY.value]: 'too few free frames for the module, its lists, its scratch space and its page tables',
};

function countOwnerFrames(owners: Uint8Array): number {
  let n = 0;
  for (let pfn = owners.indexOf(OWNERS.SNAPSHOT.value); pfn >= 0; pfn = owners.indexOf(OWNERS.SNAPSHOT.value, pfn + 1)) n++;
  return n;
}
