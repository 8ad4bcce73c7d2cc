/**
 * A save session: what every save strategy shares, so that a strategy supplies only its
 * own steps (strategy.ts).
 *
 *   runSave ─ session begins: the oracle watches the guest's own page permissions
 *   │  strategy.save(session, options):
 *   │    makeRoom()     drop reclaimable cache until the strategy's frames fit, or refuse
 *   │                   (Linux's hibernate_preallocate_memory, common to every save)
 *   │    freeze()       the freezer; the downtime clock starts
 *   │    atomic(point)  the guest's atomic section; point() is the atomic point: memory
 *   │                   accounting, the saved context, the oracle's capture
 *   │    openImage()    the image stream (refused if the swap device is too small)
 *   │    thaw()         for saves that let the guest run on: the downtime ends at THAWED
 *   │    commit()       the image made durable; for saves that power off, the downtime ends
 *   └─ report, power off
 *
 * refuse() thaws whatever was frozen and leaves the guest running, as Linux does when a
 * hibernation cannot go on; nothing irreversible has happened before the commit.
 */
import { performance } from 'node:perf_hooks';
import { OWNERS, STRUCTS } from '../abi.ts';
import { resolveOptions, type GivenOptions, type OptionSpecs, type StatSpecs } from '../declarations.ts';
import { ImageWriter, type CommitOptions, type CommitResult, type SavedContext, type SwapDevice } from '../image/index.ts';
import type { GuestAllocator } from '../machine/allocator.ts';
import { ProtocolError } from '../machine/errors.ts';
import type { Guest } from '../machine/guest.ts';
import type { Machine } from '../machine/machine.ts';
import { PhaseTimer, round1 } from '../metrics/timer.ts';
import type { Progress } from '../metrics/progress.ts';
import { OracleWatch, type Oracle } from '../oracle/oracle.ts';
import { saveablePfns, saveableWords } from './common.ts';
import { HibernationRefusedError, type ImageStream, type SaveOutcome, type SaveReport, type SaveStrategy } from './strategy.ts';

export interface SaveContext {
  readonly guest: Guest;
  /** The swap device the image goes to. */
  readonly swap: SwapDevice;
  readonly progress: Progress;
  /** Capture the oracle at the atomic point. Default true. */
  readonly oracle?: boolean;
}

export interface SaveResult {
  readonly report: SaveReport;
  /** Frames that faulted while the image was written (bitmap words), if the strategy says. */
  readonly faulted?: Uint32Array;
  /** Taken at the atomic point (unless the context said oracle: false). */
  readonly oracle?: Oracle;
}

/** Runs `strategy` with `options` on a new session, and powers the guest off after it. */
export async function runSave<O extends OptionSpecs, S extends StatSpecs>(strategy: SaveStrategy<O, S>, given: GivenOptions | undefined, ctx: SaveContext): Promise<SaveResult> {
  const options = resolveOptions(`save strategy ${strategy.name}`, strategy.options, given);
  const session = new SaveSession(ctx, strategy.name);
  let outcome: SaveOutcome<S>;
  try {
    outcome = await strategy.save(session, options);
  } catch (err) {
    // Like swsusp_free() after a failed hibernation: whatever the strategy still holds
    // for the hibernation goes back (a refused guest runs on).
    if (err instanceof HibernationRefusedError && ctx.guest.machine.alive) ctx.guest.freeSnapshotFrames();
    throw err;
  }
  if (!session.atomicPointRecorded) throw new ProtocolError(`save strategy ${strategy.name} defined no atomic point`);
  const image = outcome.image;
  const snapshotFrames = countOwner(ctx.guest.allocator.owners, OWNERS.SNAPSHOT.value);
  await session.time('power-off', () => ctx.guest.powerOff());
  for (const fn of session.cleanups.splice(0)) fn();
  const phasesMs = Object.fromEntries(Object.entries(session.timer.phases).map(([k, v]) => [k, round1(v)]));
  const downtime = session.downtime ?? session.endDowntime();
  return {
    oracle: session.oracle,
    faulted: outcome.faulted,
    report: {
      strategy: strategy.name,
      options: options as Record<string, number | boolean | undefined>,
      pagesSaved: image.pageCount,
      imageBytes: image.imageBytes,
      pageBytesWritten: image.pageBytesWritten,
      writeMs: round1(session.writeMs),
      atomicCopyPages: outcome.atomicCopyPages,
      snapshotFrames,
      cachePagesDropped: session.cachePagesDropped,
      tasksFrozen: session.tasksFrozen,
      memory: session.memory!,
      phasesMs,
      downtime: { ms: round1(downtime.ms), instructions: downtime.instructions },
      stats: outcome.stats,
    },
  };
}

export class SaveSession {
  readonly guest: Guest;
  readonly machine: Machine;
  readonly allocator: GuestAllocator;
  readonly swap: SwapDevice;
  readonly progress: Progress;
  readonly timer = new PhaseTimer();
  /** The strategy's name (it goes into the image header). */
  readonly strategy: string;
  /** The oracle, once the atomic point was recorded (with ctx.oracle not false). */
  oracle: Oracle | undefined;
  /** The saved context, copied at the atomic point (for the image header). */
  savedContext: SavedContext | undefined;
  /** Memory at the atomic point. */
  memory: SaveReport['memory'] | undefined;
  tasksFrozen = 0;
  cachePagesDropped = 0;
  atomicPointRecorded = false;
  /** Set when the downtime ended (thawed, or image committed). */
  downtime: { ms: number; instructions: number } | undefined;

  /** Run once the guest is off (a fault handler stays until then: pages are still protected). */
  readonly cleanups: Array<() => void> = [];
  private readonly watch: OracleWatch | undefined;
  private readonly nosaveFrames: number;
  private frozen = false;
  private freezeMs = 0;
  private freezeInstructions = 0;
  private atomicInstructions = 0;
  /** Instrumentation inside the downtime: not the algorithm's time. */
  private excludedMs = 0;
  /** All instrumentation so far. */
  private instrumentedMs = 0;
  private imageOpened: { ms: number; instrumented: number } | undefined;
  /** From opening the image to its commit, instrumentation excluded. */
  writeMs = 0;

  constructor(ctx: SaveContext, strategy: string) {
    this.guest = ctx.guest;
    this.machine = ctx.guest.machine;
    this.allocator = ctx.guest.allocator;
    this.swap = ctx.swap;
    this.progress = ctx.progress;
    this.strategy = strategy;
    // Before the strategy protects anything: the guest's own write permissions.
    this.watch = ctx.oracle === false ? undefined : OracleWatch.begin(ctx.guest);
    this.nosaveFrames = countOwner(this.allocator.owners, OWNERS.NOSAVE.value);
  }

  /** Runs `fn` once the guest is powered off after a successful save. */
  afterPowerOff(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Times `fn` as phase `name` of the report. */
  time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    return this.timer.time(name, fn);
  }

  /**
   * Runs harness instrumentation (checks, measurements) inside the save: its time is a
   * phase of its own, left out of the phase it ran in and out of the downtime.
   */
  instrument<T>(name: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0;
      this.timer.setApart(name, ms);
      this.instrumentedMs += ms;
      if (this.frozen) this.excludedMs += ms;
    }
  }

  /**
   * The pages the image must hold now, as allocator-bitmap words: every frame in use,
   * less the hibernation's own (SNAPSHOT) and the NOSAVE holes. Word by word, the owner
   * map searched only for those two owners (a frame-by-frame loop runs cold here).
   */
  saveableWords(): Uint32Array {
    return saveableWords(this.allocator);
  }

  /** saveableWords as a list of PFNs, ascending. */
  saveablePfns(): Uint32Array {
    return saveablePfns(this.allocator);
  }

  /**
   * Makes room: while fewer frames are free than `required()` says the strategy needs
   * (asked again after every drop, since dropping a cache page also means one page less
   * to save), drops reclaimable cache pages, half the shortfall at a time; refuses with
   * `why(needed, free)` and the numbers when the cache is empty and it still does not
   * fit. Works whether or not the tasks are frozen (the pm task drops the pages).
   */
  async makeRoom(required: () => number, why: (needed: number, free: number) => string): Promise<void> {
    let entered = false;
    try {
      for (;;) {
        const needed = required();
        const free = this.allocator.freeCount;
        if (needed <= free) return;
        const want = Math.min(this.guest.cachePages, Math.ceil((needed - free) / 2));
        let dropped = 0;
        if (want > 0) {
          if (!this.guest.inPm) {
            await this.guest.enterPm();
            entered = true;
          }
          dropped = await this.guest.pm('DROP_CACHE', want);
          this.cachePagesDropped += dropped;
        }
        if (dropped === 0) {
          const after = this.cachePagesDropped ? ` after dropping ${this.cachePagesDropped} cache pages` : '';
          await this.refuse(`${why(needed, free)}${after}`, { needed, free, frames: this.allocator.frameCount, cachePagesDropped: this.cachePagesDropped });
        }
      }
    } finally {
      if (entered && this.guest.inPm && !this.frozen && this.machine.alive) await this.guest.pm('DONE');
    }
  }

  /** Asks for hibernation and freezes the tasks (phase "freeze"); the downtime starts at FREEZE. */
  async freeze(): Promise<number> {
    return this.time('freeze', async () => {
      await this.guest.enterPm();
      // Waiting for the pm task to notice the request is not downtime: the tasks still
      // run. The event loop gets its turn now rather than in the middle of the downtime.
      await this.machine.yieldNow();
      this.freezeMs = performance.now();
      this.freezeInstructions = this.machine.instructionsNow();
      this.frozen = true;
      this.tasksFrozen = await this.guest.pm('FREEZE');
      return this.tasksFrozen;
    });
  }

  /**
   * The atomic section (phase "atomic"): interrupts off, the context saved by the guest.
   * `inside` gets `atomicPoint`, which it must call exactly once where the image is
   * defined (before any copy it makes, after any allocation whose bookkeeping the image
   * must show).
   */
  async atomic<T>(inside: (atomicPoint: () => void) => Promise<T> | T): Promise<T> {
    return this.atomicWith((atomicPoint) => this.guest.atomic(() => inside(atomicPoint)));
  }

  /**
   * atomic() for a strategy that drives the guest into its atomic section itself (the
   * suspend module: PM SUSPEND_MODULE instead of PM ATOMIC): `drive` gets atomicPoint,
   * to call at the guest's ATOMIC hypercall, exactly once.
   */
  async atomicWith<T>(drive: (atomicPoint: () => void) => Promise<T>): Promise<T> {
    if (!this.frozen) throw new ProtocolError(`save strategy ${this.strategy}: atomic() before freeze()`);
    return this.time('atomic', async () => {
      const result = await drive(() => this.recordAtomicPoint());
      if (!this.atomicPointRecorded) throw new ProtocolError(`save strategy ${this.strategy} defined no atomic point in its atomic section`);
      return result;
    });
  }

  private recordAtomicPoint(): void {
    if (this.atomicPointRecorded) throw new ProtocolError(`save strategy ${this.strategy} recorded the atomic point twice`);
    this.atomicPointRecorded = true;
    this.atomicInstructions = this.machine.instructionsNow();
    const alloc = this.allocator;
    this.memory = { frames: alloc.frameCount, usedAtAtomic: alloc.frameCount - alloc.freeCount, freeAtAtomic: alloc.freeCount, nosaveFrames: this.nosaveFrames };
    const address = this.guest.bootInfo.saved_context;
    this.savedContext = { address, bytes: this.machine.view(address, STRUCTS.saved_context.size).slice() };
    if (this.watch) this.oracle = this.instrument('oracle', () => this.watch!.capture(this.guest));
  }

  /**
   * Thaws the tasks in `mask` and leaves the pm loop (phase "thaw"): the guest runs on.
   * The downtime ends when the guest says its tasks are runnable (THAWED), not when the
   * pm task next reports: a timer tick may already run them in between.
   */
  async thaw(mask = 0xffffffff): Promise<void> {
    const command = performance.now();
    await this.time('thaw', async () => {
      await this.guest.pm('THAW', mask);
      await this.guest.pm('DONE');
    });
    this.frozen = false;
    const thawed = this.guest.lastThaw;
    if (!thawed || thawed.ms < command) throw new ProtocolError(`save strategy ${this.strategy}: the guest did not report THAWED for the THAW command`);
    this.downtime ??= this.endDowntime(thawed.ms);
  }

  /**
   * The image stream for `pfns` (ascending: the image's pages, fixed from here on).
   * Refuses (and thaws) if the swap device cannot hold them.
   */
  async openImage(pfns: Uint32Array): Promise<ImageStream> {
    const max = this.swap.maxPages();
    if (pfns.length > max) {
      await this.refuse(`the image would hold ${pfns.length} pages but the swap device ${this.swap.path} holds at most ${max}`, { pages: pfns.length, swapPages: max });
    }
    this.imageOpened ??= { ms: performance.now(), instrumented: this.instrumentedMs };
    return new ImageWriter(this.swap, {
      pfns, buildId: this.machine.options.image.buildId, ramBytes: this.machine.ramBytes, frameCount: this.allocator.frameCount, strategy: this.strategy,
    });
  }

  /**
   * Makes the image durable and writes its signature (with the context saved at the
   * atomic point). For a save whose guest is still frozen, the downtime ends here.
   */
  async commit(image: ImageStream, options: Omit<CommitOptions, 'context'> = {}): Promise<CommitResult> {
    if (!this.savedContext) throw new ProtocolError(`save strategy ${this.strategy} committed its image before the atomic point`);
    const result = await (image as ImageWriter).commit({ ...options, context: this.savedContext });
    if (this.frozen) this.downtime ??= this.endDowntime();
    if (this.imageOpened) this.writeMs = performance.now() - this.imageOpened.ms - (this.instrumentedMs - this.imageOpened.instrumented);
    return result;
  }

  /** The downtime so far (or until `atMs`, an earlier performance.now()). */
  endDowntime(atMs = performance.now()): { ms: number; instructions: number } {
    if (!this.freezeMs) return { ms: 0, instructions: 0 };
    return { ms: atMs - this.freezeMs - this.excludedMs, instructions: this.atomicInstructions - this.freezeInstructions };
  }

  /**
   * Gives up before anything irreversible: thaws what was frozen, leaves the pm loop,
   * and throws a HibernationRefusedError with the message and the numbers.
   */
  async refuse(message: string, facts: Record<string, number>): Promise<never> {
    if (this.machine.alive && this.guest.inPm) {
      if (this.frozen) await this.guest.pm('THAW', 0xffffffff);
      this.frozen = false;
      await this.guest.pm('DONE');
    }
    throw new HibernationRefusedError(message, facts);
  }
}

function countOwner(owners: Uint8Array, owner: number): number {
  let n = 0;
  for (let pfn = owners.indexOf(owner); pfn >= 0; pfn = owners.indexOf(owner, pfn + 1)) n++;
  return n;
}
