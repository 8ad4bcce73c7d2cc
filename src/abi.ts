/**
 * The hypercall ABI shared by the guest kernel and the harness: the single table.
 *
 * Everything the guest and the harness must agree on lives here: port numbers,
 * hypercall function numbers, power-management commands, frame-owner codes and the
 * byte layout of every structure the harness reads in guest memory.
 *
 * `guest/abi.h` is generated from this file (`npm run build:guest` regenerates it,
 * `test/abi.test.ts` fails if it drifts) and `docs/ABI.md` carries the same tables
 * (checked by the same test). Change the numbers here, nowhere else.
 *
 * Calling convention: the guest does `mov $PORT, %dx; out %eax, (%dx)` with the
 * function number in EAX and arguments in EBX, ECX, ESI, EDI. The harness writes
 * results back into EAX (and where stated EBX, ECX, ESI, EDI) before the `out`
 * instruction retires.
 */

/** Bumped whenever a number or a layout below changes meaning. */
export const ABI_VERSION = 12;

export const PORTS = {
  /** Hypercalls: EAX = function number. */
  HYPERCALL: 0x5e0,
  /**
   * Page-fault forward from the #PF stub: EAX = error code, EBX = faulting EIP. CR2 is read
   * by the harness from the CPU (the stub runs with interrupts off and touches only its
   * stack, so CR2 still holds the fault's address; `mov %cr2` would end a v86 JIT block).
   */
  PAGE_FAULT: 0x5e1,
} as const;

export interface AbiEntry {
  readonly value: number;
  readonly doc: string;
}

/** Hypercall function numbers (EAX on `out` to PORTS.HYPERCALL). */
export const HYPERCALLS = {
  BOOT_INFO: { value: 1, doc: 'EBX = &boot_info. Sent once per boot after paging, allocator and tasks are set up.' },
  EXCEPTION: { value: 2, doc: 'EBX = &exception_frame. An exception the kernel cannot handle; the guest halts after it.' },
  PANIC: { value: 3, doc: 'EBX = message address, ECX = length. The guest halts after it.' },
  PM_POLL: { value: 4, doc: 'Polled every tick by the pm task. Returns EAX = 1 when a hibernation was requested.' },
  PM_NEXT: { value: 5, doc: 'EBX = result of the previous command. Returns EAX = next PM command, EBX/ECX/ESI = its arguments.' },
  ATOMIC: { value: 6, doc: 'Interrupts off, tasks frozen, saved_context written: the atomic point. Sent from swsusp_arch_suspend with EBX ESI EDI EBP ESP EFLAGS, the segment registers, CR0-CR4, GDTR, IDTR and TR as its caller has them (only EAX and EDX carry the call), [ESP] = the return address. Returns EAX = 0.' },
  RESUME_CHECK: { value: 7, doc: 'Boot kernel asks whether to resume. Returns EAX = 0 (boot normally), 1 with EBX = trampoline, ECX = PBE list head, ESI = &saved_context, EDI = highmem PBE list head (0: none; the kernel copies those pages itself, through temporary mappings, before it enters the trampoline) (jump now), or 2 (boot on without workloads while the harness loads the image; it jumps on PM RESUME).' },
  RESTORE_DONE: { value: 8, doc: 'Sent by the trampoline after the PBE copy (paging off, or on the page directory of TRAMPOLINE_PD_SLOT), before the saved context is loaded.' },
  RESUMED: { value: 9, doc: 'EBX = generation. The resumed kernel has re-initialised its devices (before thawing).' },
  VERIFY: { value: 10, doc: 'EBX = task id, ECX = words checked, ESI = bad words, EDI = first bad word index (or 0xFFFFFFFF).' },
  READY: { value: 11, doc: 'EBX = number of workload tasks. Every workload has filled its buffer once (warm-up may start).' },
  POWER_OFF: { value: 12, doc: 'The guest has nothing left to do; the harness stops driving it.' },
  FREEZE_DONE: { value: 13, doc: 'EBX = tasks frozen. Informational; sent when the freezer finished.' },
  RESUME_POINT: { value: 15, doc: 'Sent at resume_point, the instant the trampoline has handed control back to the hibernated kernel and before it re-initialises anything: every register of the saved context is loaded (only EAX and EDX carry the call), [ESP] = the return address of swsusp_arch_suspend.' },
  CACHE_VERIFY: { value: 16, doc: 'ECX = cache words checked, ESI = bad words, EDI = first bad word (page index * 1024 + word) or 0xFFFFFFFF. The kernel checked every cache page against its content formula (after a resume, or on PM VERIFY).' },
  THAWED: { value: 14, doc: 'EBX = tasks thawed. Informational; sent by thaw_tasks() with interrupts still off: from here the thawed tasks can run (the end of a save\'s downtime when the guest runs on).' },
} as const satisfies Record<string, AbiEntry>;

/** Commands returned by PM_NEXT in EAX; the pm task executes them and reports the result in EBX of the next PM_NEXT. */
export const PM_COMMANDS = {
  DONE: { value: 0, doc: 'Leave the pm loop; back to normal operation.' },
  FREEZE: { value: 1, doc: 'Freeze every freezable task (each stops at its next safe point). Result: tasks frozen.' },
  THAW: { value: 2, doc: 'EBX = mask of task ids to thaw (bit n = task n). Result: tasks thawed.' },
  DROP_CACHE: { value: 3, doc: 'EBX = pages to drop from the reclaimable cache. Result: pages freed.' },
  RUN: { value: 4, doc: 'EBX = ticks to sleep with interrupts on (tasks run). Result: 0.' },
  ATOMIC: { value: 5, doc: 'cli; save context; hypercall ATOMIC. Result on the suspend path: 0 (interrupts back on). On the resume path the pm loop ends.' },
  POWER_OFF: { value: 6, doc: 'Hypercall POWER_OFF, then cli; hlt forever.' },
  PROBE: { value: 7, doc: 'EBX = probe pattern, ECX = address, ESI = length in bytes: run one access pattern (see PROBES). Result: 0.' },
  VERIFY: { value: 8, doc: 'Every workload task verifies its buffer at its next safe point and reports VERIFY; the pm task checks the cache pages at once and reports CACHE_VERIFY (if a cache workload was configured). Result: 0.' },
  SUSPEND_MODULE: { value: 10, doc: 'Tasks frozen: EBX = flags (SMOD_STRAY_WRITE, SMOD_COMPRESS), ECX = fragments (the image\'s sectors after its header in that many extents, in reverse order, recorded in its swap map; 0 or 1: contiguous), ESI = &ident (32 bytes of build id, 32 of strategy name), EDI = tasks frozen. The kernel loads the suspend module, lists the memory to save and the image\'s sectors, builds the module\'s page tables (all RAM read-only but its own), masks every interrupt and at the atomic point (hypercall ATOMIC) jumps into it; the module writes the image and the kernel powers off (POWER_OFF). Result, only if it cannot begin: an SMOD_ERR_* code.' },
  RESUME: { value: 9, doc: 'A boot kernel told 2 at RESUME_CHECK: EBX = trampoline, ECX = PBE list head, ESI = &saved_context, EDI = highmem PBE list head (as for RESUME_CHECK): cli and jump into the trampoline. Never returns.' },
} as const satisfies Record<string, AbiEntry>;

/** Access patterns the pm task runs on PM_COMMANDS.PROBE (for exact fault-count tests). */
export const PROBES = {
  WRITE_ONCE: { value: 1, doc: 'One 32-bit store at ECX.' },
  WRITE_TWICE: { value: 2, doc: 'Two 32-bit stores at ECX.' },
  READ_THEN_WRITE: { value: 3, doc: 'A 32-bit load from ECX, then a store to ECX.' },
  REP_MOVS: { value: 4, doc: 'rep movsl of ESI bytes from a kernel buffer to ECX.' },
  STRADDLE: { value: 5, doc: 'One 32-bit store at ECX (expected to cross a page boundary).' },
  READ_ONLY: { value: 6, doc: 'ESI bytes of 32-bit loads from ECX, no store.' },
  WRITE_PAGES: { value: 7, doc: 'One 32-bit store at the first word of every page in [ECX, ECX + ESI), ascending (ECX page aligned).' },
} as const satisfies Record<string, AbiEntry>;

/** Frame-owner codes in the owner byte map (one byte per frame; 0 = free). */
export const OWNERS = {
  FREE: { value: 0x00, doc: 'Free frame.' },
  RESERVED: { value: 0x01, doc: 'RAM below 1 MiB: real-mode area, multiboot info. Saved like any page in use.' },
  KERNEL: { value: 0x02, doc: 'Kernel image: text, data, bss.' },
  PAGETABLE: { value: 0x03, doc: 'Page directory and page tables.' },
  ALLOCATOR: { value: 0x04, doc: 'The allocator bitmap and the owner map themselves.' },
  KSTACK: { value: 0x05, doc: 'A kernel task stack (exceptions are delivered on it).' },
  CACHE: { value: 0x06, doc: 'Reclaimable cache page (dropped on PM_COMMANDS.DROP_CACHE).' },
  SNAPSHOT: { value: 0x07, doc: 'Hibernation bookkeeping: atomic copies, memory bitmaps, PBEs, metadata pages.' },
  KHEAP: { value: 0x08, doc: 'Other kernel allocations.' },
  NOSAVE: { value: 0x09, doc: 'Not RAM: a hole in the memory map (the VGA window at 0xA0000). Never saved or restored, like Linux\'s nosave regions.' },
  TASK_BASE: { value: 0x10, doc: 'Workload buffer of task n has owner TASK_BASE + n.' },
} as const satisfies Record<string, AbiEntry>;

/** Task states in task_struct.state. */
export const TASK_STATES = {
  UNUSED: { value: 0, doc: 'Slot not in use.' },
  RUNNABLE: { value: 1, doc: 'Runnable or running.' },
  SLEEPING: { value: 2, doc: 'Waiting for a tick.' },
  FROZEN: { value: 3, doc: 'Stopped in the refrigerator.' },
} as const satisfies Record<string, AbiEntry>;

/** Task kinds in task_struct.kind. */
export const TASK_KINDS = {
  IDLE: { value: 0, doc: 'The idle task (hlt loop); never frozen.' },
  PM: { value: 1, doc: 'The power-management task: polls PM_POLL and runs PM commands; never frozen.' },
  CHURN: { value: 2, doc: 'Pseudo-random writes over a working set.' },
  STREAM: { value: 3, doc: 'Sequential overwrite of a buffer.' },
  HELPER: { value: 4, doc: 'kwriter (workload `helper`): a freezable helper a save may thaw alone to do its I/O (Kyle Moffett\'s selective thaw); each tick it runs it counts one step in the first word of its page (buf_base).' },
} as const satisfies Record<string, AbiEntry>;

/** Other constants. */
export const CONSTANTS = {
  PAGE_SIZE: { value: 4096, doc: 'Bytes per frame.' },
  MAX_TASKS: { value: 16, doc: 'Slots in the task table.' },
  BOOT_INFO_MAGIC: { value: 0x494c4248, doc: "'HBLI' little-endian." },
  CONTEXT_MAGIC: { value: 0x58544348, doc: "'HCTX' little-endian, set in saved_context.magic by the save." },
  WORKLOAD_MAGIC: { value: 0x4b524f57, doc: "'WORK' little-endian, first word of a workload header page." },
  HZ: { value: 100, doc: 'Timer ticks per second (PIT channel 0).' },
  PM_REQUEST_IRQ: { value: 9, doc: "The interrupt line the harness raises (one edge) to request hibernation, like a power button's ACPI SCI: the guest wakes its pm task and switches to it at once, so the request does not wait for the task's next PM_POLL tick. v86's own ACPI, the only other user of IRQ 9, is off." },
  BOOT_FLAG_LARGE_PAGES: { value: 1, doc: 'boot_info.flags: RAM is identity-mapped with 4 MiB PSE pages.' },
  PF_HANDLED: { value: 0x4b4f4650, doc: "Page-fault port result 'PFOK': the harness fixed the cause, retry the access. A magic value, so that a port nobody answers (EAX keeps the error code) never means retry." },
  TRAMPOLINE_PD_SLOT: { value: 4092, doc: 'Offset in the trampoline\'s page of a word the harness writes: 0 = the trampoline copies with paging off; otherwise the physical address of a page directory that maps lowmem 1:1 with 4 MiB pages, and the trampoline copies with paging on, through it (as Linux\'s 32-bit restore does on its own resume page tables).' },
  KMAP_BASE: { value: 0xffc00000, doc: 'Linear address of the first of the kernel\'s temporary-mapping slots (lowmem=: frames above lowmem are reached only through them).' },
  SMOD_STRAY_WRITE: { value: 1, doc: 'PM SUSPEND_MODULE flag: the module plants one write into read-only memory halfway through (its isolation, tested: the write faults).' },
  SMOD_COMPRESS: { value: 2, doc: 'PM SUSPEND_MODULE flag: the module compresses every page with LZ4 into its scratch space and writes the pages packed (image compression LZ4; docs/IMAGE-FORMAT.md).' },
  SMOD_ERR_NO_DISK: { value: 2, doc: 'PM SUSPEND_MODULE result: there is no disk to write to.' },
  SMOD_ERR_DISK_TOO_SMALL: { value: 3, doc: 'PM SUSPEND_MODULE result: the image would not fit on the disk.' },
  SMOD_ERR_FRAGMENTS: { value: 4, doc: 'PM SUSPEND_MODULE result: more fragments than the swap map holds.' },
  SMOD_ERR_MEMORY: { value: 5, doc: 'PM SUSPEND_MODULE result: too few free frames for the module, its lists, its scratch space and its page tables.' },
  KMAP_SLOTS: { value: 2, doc: 'Temporary-mapping slots (a page each, from KMAP_BASE up).' },
  PF_NOT_MINE: { value: 0, doc: "Page-fault port result: not the harness's fault; the guest's own handling (report and halt). Any value but PF_HANDLED means the same." },
} as const satisfies Record<string, AbiEntry>;

/** A field of a structure in guest memory; all fields are little-endian u32 unless size says otherwise. */
export interface AbiField {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly doc: string;
}

export interface AbiStruct<Name extends string = string> {
  readonly name: string;
  readonly size: number;
  readonly doc: string;
  readonly fields: ReadonlyArray<AbiField & { readonly name: Name }>;
}

type FieldSpec = readonly [string, string] | readonly [string, string, number];

function struct<const F extends readonly FieldSpec[]>(name: string, doc: string, spec: F): AbiStruct<F[number][0]> {
  let offset = 0;
  const fields: Array<AbiField & { readonly name: F[number][0] }> = [];
  for (const entry of spec) {
    const [fieldName, fieldDoc] = entry;
    const size = entry.length === 3 ? entry[2] : 4;
    fields.push({ name: fieldName as F[number][0], offset, size, doc: fieldDoc });
    offset += size;
  }
  return { name, size: offset, doc, fields };
}

export const STRUCTS = {
  boot_info: struct('boot_info', 'Reported by BOOT_INFO; all addresses are physical (= virtual, identity mapped).', [
    ['magic', 'BOOT_INFO_MAGIC'],
    ['abi_version', 'ABI_VERSION the guest was built with'],
    ['ram_bytes', 'bytes of RAM covered by the allocator (top of the highest RAM region)'],
    ['frame_count', 'frames covered by the allocator (ram_bytes / PAGE_SIZE)'],
    ['kernel_start', 'first byte of the kernel image'],
    ['kernel_end', 'end of the kernel image including bss, page aligned'],
    ['alloc_state', '&alloc_state'],
    ['cr3', 'physical address of the page directory'],
    ['flags', 'BOOT_FLAG_* bits'],
    ['task_table', '&task_table[0] (MAX_TASKS entries of task_struct)'],
    ['task_count', 'slots in use'],
    ['saved_context', '&saved_context'],
    ['trampoline_start', 'first byte of the position-independent restore trampoline'],
    ['trampoline_end', 'end of the trampoline'],
    ['gdt_base', 'GDT address'],
    ['idt_base', 'IDT address'],
    ['tss_base', 'TSS address'],
    ['cmdline', 'kernel copy of the multiboot command line (NUL terminated)'],
    ['ticks', '&ticks (u32 timer tick counter)'],
    ['generation', '&generation (u32: 0 at first boot, +1 on every resume)'],
    ['probe_buffer', 'kernel source buffer used by PROBES.REP_MOVS'],
    ['probe_buffer_bytes', 'its size'],
    ['cache', '&cache_state (the reclaimable cache workload)'],
    ['current_task', '&current (u32: address of the running task\'s task_struct, 0 before the scheduler starts)'],
    ['reserved_bytes', 'reserve=: the region 0 .. reserved_bytes the kernel confines itself to until RESUME_CHECK, and leaves free after a normal boot (0: none)'],
    ['lowmem_bytes', 'lowmem=: RAM 0 .. lowmem_bytes is mapped permanently (identity); frames above are highmem, reached only through the KMAP slots, and hold only cache pages (= ram_bytes without lowmem=; 0 means the same)'],
  ]),
  alloc_state: struct('alloc_state', 'The page-frame allocator. The harness allocates through the same fields while the guest is stopped at a hypercall.', [
    ['bitmap', 'physical address of the bitmap: bit (pfn % 32) of word (pfn / 32) is 1 when the frame is in use'],
    ['owner_map', 'physical address of the owner byte map: one OWNERS code per frame'],
    ['frame_count', 'frames covered'],
    ['free_count', 'frames currently free'],
    ['next_hint', 'pfn where the next search starts'],
    ['zone_start', 'the guest allocates only frames zone_start .. zone_end - 1 (its own allocations; the harness may take any free frame)'],
    ['zone_end', 'see zone_start'],
  ]),
  task_struct: struct('task_struct', 'One slot of the task table.', [
    ['id', 'task id = slot index'],
    ['state', 'TASK_STATES'],
    ['kind', 'TASK_KINDS'],
    ['freezable', '1 if the freezer stops it'],
    ['esp', 'saved stack pointer while switched out'],
    ['stack_base', 'lowest address of its kernel stack'],
    ['stack_bytes', 'size of its kernel stack'],
    ['buf_base', 'workload region (header page + data), 0 if none'],
    ['buf_bytes', 'size of the workload region'],
    ['wake_tick', 'tick at which a sleeping task becomes runnable'],
    ['safe_sleep', '1 while it sleeps at a safe point: the freezer freezes it where it sleeps'],
    ['name', 'NUL-terminated name', 16],
    ['switches', 'times the CPU was switched to it (a frozen task\'s count never moves)'],
  ]),
  workload_header: struct('workload_header', 'First page of a workload region ("the task\'s own memory"). Word j of the data (which starts one page after the header) after `steps` steps is mix(seed, j, n) = fmix32(seed ^ n*0x85EBCA6B ^ 0x5bd1e995) ^ j*0x9E3779B9, where n is the number of times the word was written after the fill.', [
    ['magic', 'WORKLOAD_MAGIC'],
    ['kind', 'TASK_KINDS'],
    ['seed', 'the task seed'],
    ['steps_lo', 'steps done, low 32 bits'],
    ['steps_hi', 'steps done, high 32 bits'],
    ['words', 'data words W'],
    ['perm_mul', 'odd multiplier of the permutation (1 for stream)'],
    ['perm_add', 'addend of the permutation (0 for stream)'],
    ['perm_bits', 'k: the permutation runs over [0, 2^k) and cycle-walks into [0, W)'],
    ['rate', 'writes per tick (0 = unlimited)'],
    ['verifications', 'number of verifications done'],
    ['last_bad', 'bad words found by the last verification'],
  ]),
  saved_context: struct('saved_context', 'Written by swsusp_arch_suspend, loaded by the trampoline.', [
    ['ebx', ''], ['esi', ''], ['edi', ''], ['ebp', ''],
    ['esp', 'stack pointer to resume with'],
    ['eip', 'resume point (returns 1 from swsusp_arch_suspend)'],
    ['eflags', ''],
    ['cr0', ''], ['cr2', 'the last page-fault address'], ['cr3', ''], ['cr4', ''],
    ['gdtr_limit', 'low 16 bits used'], ['gdtr_base', ''],
    ['idtr_limit', 'low 16 bits used'], ['idtr_base', ''],
    ['cs', ''], ['ds', ''], ['es', ''], ['fs', ''], ['gs', ''], ['ss', ''],
    ['tr', 'task register selector (the trampoline clears its descriptor\'s busy bit and reloads it)'],
    ['magic', 'CONTEXT_MAGIC once saved'],
  ]),
  cache_state: struct('cache_state', 'The cache workload: pages the kernel may drop when memory is short. Word w of cache page i holds cache_word(seed, i, w) = fmix32(seed ^ i*0x9E3779B9 ^ 0x27d4eb2f) ^ w*0x85EBCA6B, a function of the seed and the page index only (not of the frame), so a fresh boot with the same command line recreates the same pages.', [
    ['configured', '1 if the command line asked for a cache workload'],
    ['pages', 'pages the cache holds now (pages 0 .. pages-1; dropping takes the highest first)'],
    ['capacity', 'pages the cache was created with (entries in the table)'],
    ['table', 'physical address of the table of page addresses (u32 per page, KHEAP frames)'],
    ['seed', 'the cache seed'],
  ]),
  exception_frame: struct('exception_frame', 'Reported by EXCEPTION.', [
    ['vector', ''], ['error_code', '0 if the vector pushes none'], ['eip', ''], ['cs', ''], ['eflags', ''], ['cr2', ''],
    ['eax', ''], ['ebx', ''], ['ecx', ''], ['edx', ''], ['esi', ''], ['edi', ''], ['ebp', ''], ['esp', 'ESP before the exception'],
    ['task_id', 'current task'],
  ]),
  pbe: struct('pbe', 'Page backup entry (as Linux struct pbe), built by the restore in safe pages.', [
    ['address', 'physical address of the copy (in a safe page)'],
    ['orig_address', 'physical address the page belongs to'],
    ['next', 'physical address of the next pbe, 0 at the end'],
  ]),
} as const;

export type StructName = keyof typeof STRUCTS;

/** Byte offset of a field, throwing on a typo so layouts cannot silently drift. */
export function fieldOffset(structName: StructName, field: string): number {
  const f = STRUCTS[structName].fields.find((x) => x.name === field);
  if (!f) throw new Error(`abi: ${structName} has no field ${field}`);
  return f.offset;
}

export type HypercallName = keyof typeof HYPERCALLS;
export type PmCommandName = keyof typeof PM_COMMANDS;

export const HYPERCALL_NAMES: ReadonlyMap<number, HypercallName> = new Map(
  Object.entries(HYPERCALLS).map(([k, v]) => [v.value, k as HypercallName]),
);

export function ownerName(code: number): string {
  if (code >= OWNERS.TASK_BASE.value) return `task ${code - OWNERS.TASK_BASE.value}`;
  for (const [k, v] of Object.entries(OWNERS)) if (v.value === code) return k.toLowerCase();
  return `unknown(0x${code.toString(16)})`;
}

/** The C header the guest includes; generated, never edited by hand. */
export function renderAbiHeader(): string {
  const out: string[] = [
    '/* Generated from src/abi.ts by `npm run build:guest`. Do not edit. */',
    '#ifndef HIBERLAB_ABI_H',
    '#define HIBERLAB_ABI_H',
    '',
    `#define ABI_VERSION ${ABI_VERSION}`,
    `#define PORT_HYPERCALL 0x${PORTS.HYPERCALL.toString(16)}`,
    `#define PORT_PAGE_FAULT 0x${PORTS.PAGE_FAULT.toString(16)}`,
    '',
  ];
  const groups: Array<[string, Record<string, AbiEntry>]> = [
    ['HC_', HYPERCALLS], ['PM_', PM_COMMANDS], ['PROBE_', PROBES], ['OWNER_', OWNERS],
    ['TASK_', TASK_STATES], ['KIND_', TASK_KINDS], ['', CONSTANTS],
  ];
  for (const [prefix, table] of groups) {
    for (const [name, e] of Object.entries(table)) {
      out.push(`#define ${prefix}${name} ${e.value >= 0x10000 ? `0x${e.value.toString(16)}u` : e.value} /* ${e.doc.replace(/\*\//g, '')} */`);
    }
    out.push('');
  }
  out.push('#ifndef __ASSEMBLER__');
  out.push('#include <stdint.h>');
  out.push('#include <stddef.h>');
  for (const s of Object.values(STRUCTS)) {
    out.push('', `/* ${s.doc} */`, `struct ${s.name} {`);
    for (const f of s.fields) {
      const decl = f.size === 4 ? `uint32_t ${f.name};` : `char ${f.name}[${f.size}];`;
      out.push(`    ${decl}${f.doc ? ` /* ${f.doc.replace(/\*\//g, '')} */` : ''}`);
    }
    out.push('} __attribute__((packed));');
    out.push(`_Static_assert(sizeof(struct ${s.name}) == ${s.size}, "${s.name} size");`);
    for (const f of s.fields) out.push(`_Static_assert(offsetof(struct ${s.name}, ${f.name}) == ${f.offset}, "${s.name}.${f.name}");`);
  }
  out.push('#endif /* __ASSEMBLER__ */', '');
  // Offsets for assembler code. Prefixed so they cannot collide with the constants
  // above (boot_info.magic would otherwise redefine BOOT_INFO_MAGIC).
  for (const s of Object.values(STRUCTS)) {
    for (const f of s.fields) out.push(`#define OFF_${s.name.toUpperCase()}_${f.name.toUpperCase()} ${f.offset}`);
    out.push(`#define SIZEOF_${s.name.toUpperCase()} ${s.size}`);
  }
  out.push('', '#endif /* HIBERLAB_ABI_H */', '');
  return out.join('\n');
}

/** The markdown tables in docs/ABI.md between the generated-table markers. */
export function renderAbiMarkdown(): string {
  const out: string[] = [];
  const table = (title: string, t: Record<string, AbiEntry>, hex = false) => {
    out.push(`### ${title}`, '', '| name | value | meaning |', '|---|---|---|');
    for (const [k, v] of Object.entries(t)) out.push(`| \`${k}\` | ${hex ? `0x${v.value.toString(16)}` : v.value} | ${v.doc.replace(/\|/g, '\\|')} |`);
    out.push('');
  };
  out.push(`ABI version: **${ABI_VERSION}**. Ports: hypercall \`0x${PORTS.HYPERCALL.toString(16)}\`, page-fault forward \`0x${PORTS.PAGE_FAULT.toString(16)}\`.`, '');
  table('Hypercalls (EAX)', HYPERCALLS);
  table('PM commands (returned by PM_NEXT)', PM_COMMANDS);
  table('Probe patterns', PROBES);
  table('Frame owners', OWNERS, true);
  table('Task states', TASK_STATES);
  table('Task kinds', TASK_KINDS);
  table('Constants', CONSTANTS);
  for (const s of Object.values(STRUCTS)) {
    out.push(`### struct ${s.name} (${s.size} bytes)`, '', s.doc, '', '| offset | field | size | meaning |', '|---|---|---|---|');
    for (const f of s.fields) out.push(`| ${f.offset} | \`${f.name}\` | ${f.size} | ${f.doc.replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  return out.join('\n');
}
