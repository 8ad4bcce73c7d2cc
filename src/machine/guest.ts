/**
 * A booted guest kernel: the machine plus what the kernel told us about itself
 * (boot info, allocator, tasks) and the power-management protocol to drive it.
 *
 * Boot sequence as the harness sees it: BOOT_INFO → RESUME_CHECK (answered by the
 * caller: boot normally, or jump into a prepared restore) → READY once every workload
 * filled its buffer. Hibernation is requested through PM_POLL (answered inline every
 * tick); the pm task then asks PM_NEXT for commands one by one.
 */
import { ABI_VERSION, CONSTANTS, OWNERS, PM_COMMANDS, STRUCTS, type PmCommandName } from '../abi.ts';
import { GuestAllocator } from './allocator.ts';
import { ProtocolError } from './errors.ts';
import { fieldAddr, readBootInfo, readStruct, readTasks, type BootInfo, type StructValues, type TaskInfo } from './guest-structs.ts';
import { Machine, type Hypercall, type HypercallResult, type MachineOptions, type RunOptions } from './machine.ts';
import { parseWorkloadSpec, workloadCmdline, type WorkloadSpec } from './workload.ts';
import { hex } from '../units.ts';

export interface GuestOptions extends Omit<MachineOptions, 'cmdline'> {
  /** Workloads, e.g. "churn:4M@2000,stream:8M,cache:8M" (see parseWorkloadSpec). Default: none. */
  readonly workload?: string | readonly WorkloadSpec[];
  /** Seed of the workloads' content. Default 1. */
  readonly seed?: number;
  /** Map RAM with 4 MiB pages. Default false. */
  readonly largePages?: boolean;
  /** Extra words for the kernel command line. */
  readonly extraCmdline?: string;
  /** reserve=: a region of this many bytes from 0 that the kernel confines itself to until RESUME_CHECK and leaves free after a normal boot (for the `reserved` restore). */
  readonly reserveBytes?: number;
  /** lowmem=: only RAM below this many bytes is mapped for good; the frames above are highmem, reached through KMAP slots, and hold the cache pages. */
  readonly lowmemBytes?: number;
}

/** What the boot kernel does at RESUME_CHECK. */
export type ResumeDecision =
  | { resume: false }
  /** highPbeHead: a second PBE list the boot kernel copies itself, through temporary mappings, before it enters the trampoline (highmem). */
  | { resume: true; trampoline: number; pbeHead: number; context: number; highPbeHead?: number };

/** A workload's check of its own data: a task's buffer, or the kernel's check of the cache pages. */
export interface VerifyReport {
  /** The task that checked its buffer; -1 for the cache, which the kernel checks. */
  taskId: number;
  workload: 'churn' | 'stream' | 'cache';
  wordsChecked: number;
  badWords: number;
  /** Index of the first bad word (for the cache: page index * 1024 + word), if any. */
  firstBad: number | undefined;
}

export class Guest {
  readonly bootInfo: BootInfo;
  readonly allocator: GuestAllocator;
  readonly workloads: readonly WorkloadSpec[];
  private hibernateRequested = false;
  /** The result of the last PM command, delivered with the next PM_NEXT. */
  private lastPmResult = 0;
  /** When the guest last thawed tasks (its THAWED hypercall): host time and guest instructions. */
  lastThaw: { readonly ms: number; readonly instructions: number } | undefined;
  private inPmLoop = false;
  /** RESUME_CHECK was answered 2: the boot kernel runs on while the image is loaded, and jumps on PM RESUME. */
  private bootingOn = false;
  private pendingResumeCheck = false;
  /** VERIFY reports received since the last takeVerifyReports(). */
  private verifyReports: VerifyReport[] = [];

  private constructor(readonly machine: Machine, bootInfo: BootInfo, workloads: readonly WorkloadSpec[]) {
    this.bootInfo = bootInfo;
    this.allocator = new GuestAllocator(machine, bootInfo);
    this.workloads = workloads;
    machine.setInlineHandler('PM_POLL', () => ({ eax: this.hibernateRequested ? 1 : 0 }));
    machine.setInlineHandler('FREEZE_DONE', () => undefined);
    machine.setInlineHandler('THAWED', () => {
      this.lastThaw = { ms: performance.now(), instructions: machine.instructionsNow() };
      return undefined;
    });
  }

  /**
   * Boots a fresh machine up to RESUME_CHECK and lets `decide` answer it (after the
   * boot info is known). With `{resume: false}` it continues to READY.
   */
  static async boot(options: GuestOptions, decide: (g: Guest) => Promise<ResumeDecision> | ResumeDecision = () => ({ resume: false })): Promise<Guest> {
    const workloads = typeof options.workload === 'string' ? parseWorkloadSpec(options.workload, options.ramBytes) : (options.workload ?? []);
    const cmdline = [
      workloadCmdline(workloads),
      `seed=${(options.seed ?? 1) >>> 0}`,
      options.largePages ? 'pages=4m' : '',
      options.reserveBytes ? `reserve=${options.reserveBytes >>> 0}` : '',
      options.lowmemBytes ? `lowmem=${options.lowmemBytes >>> 0}` : '',
      options.extraCmdline ?? '',
    ].filter(Boolean).join(' ');
    const machine = await Machine.boot({ ...options, cmdline });
    try {
      const bi = await machine.runUntil(['BOOT_INFO'], { maxMs: 60_000 });
      const bootInfo = readBootInfo(machine, bi.ebx, ABI_VERSION);
      const guest = new Guest(machine, bootInfo, workloads);
      machine.complete({ eax: 0 });
      await machine.runUntil(['RESUME_CHECK'], { maxMs: 60_000 });
      guest.pendingResumeCheck = true;
      const decision = await decide(guest);
      if (guest.bootingOn) {
        // The boot kernel ran on while the image was loaded: it jumps on PM RESUME.
        if (decision.resume) {
          await guest.enterPm();
          machine.complete({ eax: PM_COMMANDS.RESUME.value, ebx: decision.trampoline, ecx: decision.pbeHead, esi: decision.context, edi: decision.highPbeHead ?? 0 });
          guest.inPmLoop = false;
        }
      } else if (decision.resume) {
        machine.complete({ eax: 1, ebx: decision.trampoline, ecx: decision.pbeHead, esi: decision.context, edi: decision.highPbeHead ?? 0 });
      } else {
        machine.complete({ eax: 0 });
        await guest.waitReady();
      }
      guest.pendingResumeCheck = false;
      return guest;
    } catch (err) {
      await machine.powerOff();
      throw err;
    }
  }

  /**
   * At RESUME_CHECK, instead of answering jump or boot: lets the boot kernel run on
   * without workloads (RESUME_CHECK answered 2) while the harness loads the image into
   * it; the resume decision then goes to it as PM RESUME. For restores that load while
   * the boot kernel runs (compare-on-load).
   */
  letBootKernelRun(): void {
    if (!this.pendingResumeCheck || this.bootingOn) throw new ProtocolError('letBootKernelRun: the boot kernel is not waiting at RESUME_CHECK');
    this.machine.complete({ eax: 2 });
    this.bootingOn = true;
  }

  /** Number of workload tasks (churn/stream); cache has no task. */
  get workloadTaskCount(): number {
    return this.workloads.filter((w) => w.kind === 'churn' || w.kind === 'stream').length;
  }

  private async waitReady(): Promise<void> {
    const ready = await this.machine.runUntil(['READY'], { maxMs: 300_000 });
    if (ready.ebx !== this.workloadTaskCount) {
      throw new ProtocolError(`guest reported READY with ${ready.ebx} workload tasks, expected ${this.workloadTaskCount}`);
    }
    this.machine.complete({ eax: 0 });
  }

  /** The kernel's tick counter (HZ per second of guest time). */
  get ticks(): number {
    return this.machine.readU32(this.bootInfo.ticks);
  }

  get generation(): number {
    return this.machine.readU32(this.bootInfo.generation);
  }

  /** The cache workload's state (pages held now, whether one was configured, its table and seed). */
  get cache(): StructValues<'cache_state'> {
    return readStruct(this.machine, 'cache_state', this.bootInfo.cache);
  }

  /** Pages the reclaimable cache holds now. */
  get cachePages(): number {
    return this.machine.readU32(fieldAddr('cache_state', this.bootInfo.cache, 'pages'));
  }

  tasks(): TaskInfo[] {
    return readTasks(this.machine, this.bootInfo);
  }

  /**
   * Id of the task running now (the kernel's `current`, read through
   * boot_info.current_task), or -1 before the scheduler started. Inside a page-fault
   * handler this is the task that made the faulting access.
   */
  currentTaskId(): number {
    const ptr = this.machine.readU32(this.bootInfo.current_task);
    return ptr ? Math.floor((ptr - this.bootInfo.task_table) / STRUCTS.task_struct.size) : -1;
  }

  /** Lets the guest run for `ticks` timer ticks of guest time (stops at no hypercall but errors). */
  async runTicks(ticks: number, options: RunOptions = {}): Promise<void> {
    const target = this.ticks + ticks;
    // Stop at the first PM_POLL at or after the target tick.
    this.machine.setInlineHandler('PM_POLL', (call, m) => {
      if (this.ticks >= target) m.stopAt(call);
      return { eax: 0 };
    });
    try {
      const call = await this.machine.run({ waitingFor: `tick ${target}`, ...options });
      if (call.name !== 'PM_POLL') throw new ProtocolError(`guest made ${call.name} while running freely`);
      this.machine.complete({ eax: 0 });
    } finally {
      this.machine.setInlineHandler('PM_POLL', () => ({ eax: this.hibernateRequested ? 1 : 0 }));
    }
  }

  /** Asks for hibernation (like `echo disk > /sys/power/state`) and waits until the pm task asks for its first command. */
  async enterPm(): Promise<void> {
    if (this.inPmLoop) return;
    this.hibernateRequested = true;
    // The power button: the guest switches to its pm task at once instead of at its next tick.
    this.machine.pulseIrq(CONSTANTS.PM_REQUEST_IRQ.value);
    const call = await this.runToPm();
    this.hibernateRequested = false;
    if (call.name !== 'PM_NEXT') throw new ProtocolError(`expected PM_NEXT, got ${call.name}`);
    this.inPmLoop = true;
    this.lastPmResult = call.ebx;
  }

  /**
   * Sends one PM command and runs until the pm task asks for the next one; returns
   * the command's result. ATOMIC stops at the ATOMIC hypercall instead: use atomic().
   */
  async pm(command: Exclude<PmCommandName, 'ATOMIC' | 'POWER_OFF'>, ebx = 0, ecx = 0, esi = 0): Promise<number> {
    this.requirePm(command);
    this.machine.complete({ eax: PM_COMMANDS[command].value, ebx, ecx, esi });
    if (command === 'DONE') {
      this.inPmLoop = false;
      return 0;
    }
    const call = await this.runToPm();
    if (call.name !== 'PM_NEXT') throw new ProtocolError(`PM ${command}: expected PM_NEXT, got ${call.name}`);
    this.lastPmResult = call.ebx;
    return call.ebx;
  }

  /**
   * PM ATOMIC: the guest disables interrupts, saves its context and stops at the
   * ATOMIC hypercall. `inside` runs there (the atomic section); afterwards the guest
   * returns to its pm loop with interrupts on and asks for the next command.
   */
  async atomic<T>(inside: (call: Hypercall) => Promise<T> | T): Promise<T> {
    this.requirePm('ATOMIC');
    this.machine.complete({ eax: PM_COMMANDS.ATOMIC.value });
    const call = await this.runToPm();
    if (call.name !== 'ATOMIC') throw new ProtocolError(`PM ATOMIC: expected the ATOMIC hypercall, got ${call.name}`);
    const result = await inside(call);
    this.machine.complete({ eax: 0 });
    const next = await this.runToPm();
    if (next.name !== 'PM_NEXT') throw new ProtocolError(`after ATOMIC: expected PM_NEXT, got ${next.name} at ${hex(next.eip)}`);
    this.lastPmResult = next.ebx;
    return result;
  }

  /**
   * PM SUSPEND_MODULE (docs/ABI.md): the kernel prepares the suspend module and jumps
   * into it at the atomic point, where `atAtomic` runs (the ATOMIC hypercall); the module
   * writes the image and the kernel powers off (POWER_OFF: the guest is done). Returns
   * what the module's run took (host ms, guest ms, guest instructions), or the kernel's
   * SMOD_ERR_* result if it could not begin (then it is back in its pm loop). An
   * exception in the module ends the run with its GuestExceptionError.
   */
  async suspendModule(args: { flags: number; fragments: number; ident: number; frozen: number }, atAtomic: () => void): Promise<{ refused: number } | { hostMs: number; guestMs: number; instructions: number }> {
    this.requirePm('SUSPEND_MODULE');
    this.machine.complete({ eax: PM_COMMANDS.SUSPEND_MODULE.value, ebx: args.flags, ecx: args.fragments, esi: args.ident, edi: args.frozen });
    const call = await this.runToPm();
    if (call.name === 'PM_NEXT') {
      this.lastPmResult = call.ebx;
      return { refused: call.ebx };
    }
    if (call.name !== 'ATOMIC') throw new ProtocolError(`PM SUSPEND_MODULE: expected the ATOMIC hypercall, got ${call.name}`);
    atAtomic();
    const t = performance.now();
    const g = this.machine.guestTimeMs();
    const i = this.machine.instructionsNow();
    this.machine.complete({ eax: 0 });
    this.inPmLoop = false;
    await this.machine.runUntil(['POWER_OFF'], { maxMs: 600_000, waitingFor: 'the suspend module (POWER_OFF)' });
    return { hostMs: performance.now() - t, guestMs: this.machine.guestTimeMs() - g, instructions: this.machine.instructionsNow() - i };
  }

  /** PM POWER_OFF: the guest says goodbye, then the emulator is destroyed. */
  async powerOff(): Promise<void> {
    if (this.inPmLoop && this.machine.alive) {
      this.machine.complete({ eax: PM_COMMANDS.POWER_OFF.value });
      await this.machine.runUntil(['POWER_OFF'], { maxMs: 30_000 });
      this.inPmLoop = false;
    }
    await this.machine.powerOff();
  }

  /**
   * After a restore: runs from the trampoline through RESTORE_DONE (calling
   * `atRestoreDone` there: memory equals the image), RESUME_POINT (`atResumePoint`: the
   * saved context is loaded, nothing has run yet), RESUMED (frees the hibernation's
   * leftover frames, like swsusp_free) and the workloads' verification reports.
   */
  async completeResume(hooks: { atRestoreDone?: () => void; atResumePoint?: () => void; atResumed?: (generation: number) => void } = {}): Promise<VerifyReport[]> {
    await this.machine.runUntil(['RESTORE_DONE'], { maxMs: 120_000, waitingFor: 'the trampoline (RESTORE_DONE)' });
    hooks.atRestoreDone?.();
    this.machine.complete({ eax: 0 });
    await this.machine.runUntil(['RESUME_POINT'], { maxMs: 60_000, waitingFor: 'the resumed kernel (RESUME_POINT)' });
    hooks.atResumePoint?.();
    this.machine.complete({ eax: 0 });
    const resumed = await this.machine.runUntil(['RESUMED'], { maxMs: 60_000 });
    this.freeSnapshotFrames();
    hooks.atResumed?.(resumed.ebx);
    this.machine.complete({ eax: 0 });
    this.inPmLoop = false;
    // This object was made for the boot kernel; the tasks and the cache are now the resumed kernel's.
    return this.collectVerifyReports(this.verifyReportsExpected());
  }

  /** Reports a verification brings: one per workload task, and the cache's if a cache workload was configured. */
  verifyReportsExpected(): number {
    const tasks = this.tasks().filter((t) => t.kind === 'churn' || t.kind === 'stream').length;
    return tasks + (this.cache.configured ? 1 : 0);
  }

  /** Asks every workload task to verify its buffer now and collects the reports. */
  async verifyNow(): Promise<VerifyReport[]> {
    await this.enterPm();
    await this.pm('VERIFY');
    await this.pm('DONE');
    return this.collectVerifyReports(this.verifyReportsExpected());
  }

  private async collectVerifyReports(count: number): Promise<VerifyReport[]> {
    while (this.verifyReports.length < count) {
      const call = await this.machine.run({ waitingFor: `VERIFY reports (${this.verifyReports.length}/${count})`, maxMs: 300_000 });
      const report = this.verifyReportOf(call);
      if (report) {
        this.verifyReports.push(report);
        this.machine.complete({ eax: 0 });
      } else if (call.name === 'PM_NEXT') {
        this.machine.complete({ eax: PM_COMMANDS.DONE.value });
      } else {
        throw new ProtocolError(`waiting for VERIFY, the guest made ${call.name}`);
      }
    }
    const reports = this.verifyReports.sort((a, b) => a.taskId - b.taskId);
    this.verifyReports = [];
    return reports;
  }

  /** The report a VERIFY or CACHE_VERIFY hypercall carries; undefined for any other call. */
  private verifyReportOf(call: Hypercall): VerifyReport | undefined {
    const firstBad = call.edi === 0xffffffff ? undefined : call.edi;
    if (call.name === 'CACHE_VERIFY') return { taskId: -1, workload: 'cache', wordsChecked: call.ecx, badWords: call.esi, firstBad };
    if (call.name !== 'VERIFY') return undefined;
    const kind = this.tasks()[call.ebx]?.kind;
    if (kind !== 'churn' && kind !== 'stream') throw new ProtocolError(`VERIFY from task ${call.ebx}, which is no workload task (${kind ?? 'no such task'})`);
    return { taskId: call.ebx, workload: kind, wordsChecked: call.ecx, badWords: call.esi, firstBad };
  }

  /** Frees every frame owned by the hibernation (SNAPSHOT) in this kernel's allocator. */
  freeSnapshotFrames(): number {
    const owners = this.allocator.owners;
    const frames: number[] = [];
    for (let pfn = 0; pfn < owners.length; pfn++) if (owners[pfn] === OWNERS.SNAPSHOT.value) frames.push(pfn);
    this.allocator.freeFrames(frames);
    return frames.length;
  }

  /** Whether the pm task is in its pm loop, waiting for the next PM command. */
  get inPm(): boolean {
    return this.inPmLoop;
  }

  /** The pm task's last command result (delivered with the PM_NEXT now pending). */
  get pmResult(): number {
    return this.lastPmResult;
  }

  private async runToPm(): Promise<Hypercall> {
    // VERIFY reports and READY may arrive while we wait for the pm task; keep them.
    return this.machine.runUntil(['PM_NEXT', 'ATOMIC', 'POWER_OFF'], {
      maxMs: 300_000,
      otherwise: (call): HypercallResult => {
        const report = this.verifyReportOf(call);
        if (report) {
          this.verifyReports.push(report);
          return { eax: 0 };
        }
        throw new ProtocolError(`unexpected hypercall ${call.name} while driving the pm task`);
      },
    });
  }

  private requirePm(command: string): void {
    if (!this.inPmLoop) throw new ProtocolError(`PM ${command}: the pm task is not in its pm loop (call enterPm first)`);
  }
}
