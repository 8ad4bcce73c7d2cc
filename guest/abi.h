/* Generated from src/abi.ts by `npm run build:guest`. Do not edit. */
#ifndef HIBERLAB_ABI_H
#define HIBERLAB_ABI_H

#define ABI_VERSION 12
#define PORT_HYPERCALL 0x5e0
#define PORT_PAGE_FAULT 0x5e1

#define HC_BOOT_INFO 1 /* EBX = &boot_info. Sent once per boot after paging, allocator and tasks are set up. */
#define HC_EXCEPTION 2 /* EBX = &exception_frame. An exception the kernel cannot handle; the guest halts after it. */
#define HC_PANIC 3 /* EBX = message address, ECX = length. The guest halts after it. */
#define HC_PM_POLL 4 /* Polled every tick by the pm task. Returns EAX = 1 when a hibernation was requested. */
#define HC_PM_NEXT 5 /* EBX = result of the previous command. Returns EAX = next PM command, EBX/ECX/ESI = its arguments. */
#define HC_ATOMIC 6 /* Interrupts off, tasks frozen, saved_context written: the atomic point. Sent from swsusp_arch_suspend with EBX ESI EDI EBP ESP EFLAGS, the segment registers, CR0-CR4, GDTR, IDTR and TR as its caller has them (only EAX and EDX carry the call), [ESP] = the return address. Returns EAX = 0. */
#define HC_RESUME_CHECK 7 /* Boot kernel asks whether to resume. Returns EAX = 0 (boot normally), 1 with EBX = trampoline, ECX = PBE list head, ESI = &saved_context, EDI = highmem PBE list head (0: none; the kernel copies those pages itself, through temporary mappings, before it enters the trampoline) (jump now), or 2 (boot on without workloads while the harness loads the image; it jumps on PM RESUME). */
#define HC_RESTORE_DONE 8 /* Sent by the trampoline after the PBE copy (paging off, or on the page directory of TRAMPOLINE_PD_SLOT), before the saved context is loaded. */
#define HC_RESUMED 9 /* EBX = generation. The resumed kernel has re-initialised its devices (before thawing). */
#define HC_VERIFY 10 /* EBX = task id, ECX = words checked, ESI = bad words, EDI = first bad word index (or 0xFFFFFFFF). */
#define HC_READY 11 /* EBX = number of workload tasks. Every workload has filled its buffer once (warm-up may start). */
#define HC_POWER_OFF 12 /* The guest has nothing left to do; the harness stops driving it. */
#define HC_FREEZE_DONE 13 /* EBX = tasks frozen. Informational; sent when the freezer finished. */
#define HC_RESUME_POINT 15 /* Sent at resume_point, the instant the trampoline has handed control back to the hibernated kernel and before it re-initialises anything: every register of the saved context is loaded (only EAX and EDX carry the call), [ESP] = the return address of swsusp_arch_suspend. */
#define HC_CACHE_VERIFY 16 /* ECX = cache words checked, ESI = bad words, EDI = first bad word (page index * 1024 + word) or 0xFFFFFFFF. The kernel checked every cache page against its content formula (after a resume, or on PM VERIFY). */
#define HC_THAWED 14 /* EBX = tasks thawed. Informational; sent by thaw_tasks() with interrupts still off: from here the thawed tasks can run (the end of a save's downtime when the guest runs on). */

#define PM_DONE 0 /* Leave the pm loop; back to normal operation. */
#define PM_FREEZE 1 /* Freeze every freezable task (each stops at its next safe point). Result: tasks frozen. */
#define PM_THAW 2 /* EBX = mask of task ids to thaw (bit n = task n). Result: tasks thawed. */
#define PM_DROP_CACHE 3 /* EBX = pages to drop from the reclaimable cache. Result: pages freed. */
#define PM_RUN 4 /* EBX = ticks to sleep with interrupts on (tasks run). Result: 0. */
#define PM_ATOMIC 5 /* cli; save context; hypercall ATOMIC. Result on the suspend path: 0 (interrupts back on). On the resume path the pm loop ends. */
#define PM_POWER_OFF 6 /* Hypercall POWER_OFF, then cli; hlt forever. */
#define PM_PROBE 7 /* EBX = probe pattern, ECX = address, ESI = length in bytes: run one access pattern (see PROBES). Result: 0. */
#define PM_VERIFY 8 /* Every workload task verifies its buffer at its next safe point and reports VERIFY; the pm task checks the cache pages at once and reports CACHE_VERIFY (if a cache workload was configured). Result: 0. */
#define PM_SUSPEND_MODULE 10 /* Tasks frozen: EBX = flags (SMOD_STRAY_WRITE, SMOD_COMPRESS), ECX = fragments (the image's sectors after its header in that many extents, in reverse order, recorded in its swap map; 0 or 1: contiguous), ESI = &ident (32 bytes of build id, 32 of strategy name), EDI = tasks frozen. The kernel loads the suspend module, lists the memory to save and the image's sectors, builds the module's page tables (all RAM read-only but its own), masks every interrupt and at the atomic point (hypercall ATOMIC) jumps into it; the module writes the image and the kernel powers off (POWER_OFF). Result, only if it cannot begin: an SMOD_ERR_* code. */
#define PM_RESUME 9 /* A boot kernel told 2 at RESUME_CHECK: EBX = trampoline, ECX = PBE list head, ESI = &saved_context, EDI = highmem PBE list head (as for RESUME_CHECK): cli and jump into the trampoline. Never returns. */

#define PROBE_WRITE_ONCE 1 /* One 32-bit store at ECX. */
#define PROBE_WRITE_TWICE 2 /* Two 32-bit stores at ECX. */
#define PROBE_READ_THEN_WRITE 3 /* A 32-bit load from ECX, then a store to ECX. */
#define PROBE_REP_MOVS 4 /* rep movsl of ESI bytes from a kernel buffer to ECX. */
#define PROBE_STRADDLE 5 /* One 32-bit store at ECX (expected to cross a page boundary). */
#define PROBE_READ_ONLY 6 /* ESI bytes of 32-bit loads from ECX, no store. */
#define PROBE_WRITE_PAGES 7 /* One 32-bit store at the first word of every page in [ECX, ECX + ESI), ascending (ECX page aligned). */

#define OWNER_FREE 0 /* Free frame. */
#define OWNER_RESERVED 1 /* RAM below 1 MiB: real-mode area, multiboot info. Saved like any page in use. */
#define OWNER_KERNEL 2 /* Kernel image: text, data, bss. */
#define OWNER_PAGETABLE 3 /* Page directory and page tables. */
#define OWNER_ALLOCATOR 4 /* The allocator bitmap and the owner map themselves. */
#define OWNER_KSTACK 5 /* A kernel task stack (exceptions are delivered on it). */
#define OWNER_CACHE 6 /* Reclaimable cache page (dropped on PM_COMMANDS.DROP_CACHE). */
#define OWNER_SNAPSHOT 7 /* Hibernation bookkeeping: atomic copies, memory bitmaps, PBEs, metadata pages. */
#define OWNER_KHEAP 8 /* Other kernel allocations. */
#define OWNER_NOSAVE 9 /* Not RAM: a hole in the memory map (the VGA window at 0xA0000). Never saved or restored, like Linux's nosave regions. */
#define OWNER_TASK_BASE 16 /* Workload buffer of task n has owner TASK_BASE + n. */

#define TASK_UNUSED 0 /* Slot not in use. */
#define TASK_RUNNABLE 1 /* Runnable or running. */
#define TASK_SLEEPING 2 /* Waiting for a tick. */
#define TASK_FROZEN 3 /* Stopped in the refrigerator. */

#define KIND_IDLE 0 /* The idle task (hlt loop); never frozen. */
#define KIND_PM 1 /* The power-management task: polls PM_POLL and runs PM commands; never frozen. */
#define KIND_CHURN 2 /* Pseudo-random writes over a working set. */
#define KIND_STREAM 3 /* Sequential overwrite of a buffer. */
#define KIND_HELPER 4 /* kwriter (workload `helper`): a freezable helper a save may thaw alone to do its I/O (Kyle Moffett's selective thaw); each tick it runs it counts one step in the first word of its page (buf_base). */

#define PAGE_SIZE 4096 /* Bytes per frame. */
#define MAX_TASKS 16 /* Slots in the task table. */
#define BOOT_INFO_MAGIC 0x494c4248u /* 'HBLI' little-endian. */
#define CONTEXT_MAGIC 0x58544348u /* 'HCTX' little-endian, set in saved_context.magic by the save. */
#define WORKLOAD_MAGIC 0x4b524f57u /* 'WORK' little-endian, first word of a workload header page. */
#define HZ 100 /* Timer ticks per second (PIT channel 0). */
#define PM_REQUEST_IRQ 9 /* The interrupt line the harness raises (one edge) to request hibernation, like a power button's ACPI SCI: the guest wakes its pm task and switches to it at once, so the request does not wait for the task's next PM_POLL tick. v86's own ACPI, the only other user of IRQ 9, is off. */
#define BOOT_FLAG_LARGE_PAGES 1 /* boot_info.flags: RAM is identity-mapped with 4 MiB PSE pages. */
#define PF_HANDLED 0x4b4f4650u /* Page-fault port result 'PFOK': the harness fixed the cause, retry the access. A magic value, so that a port nobody answers (EAX keeps the error code) never means retry. */
#define TRAMPOLINE_PD_SLOT 4092 /* Offset in the trampoline's page of a word the harness writes: 0 = the trampoline copies with paging off; otherwise the physical address of a page directory that maps lowmem 1:1 with 4 MiB pages, and the trampoline copies with paging on, through it (as Linux's 32-bit restore does on its own resume page tables). */
#define KMAP_BASE 0xffc00000u /* Linear address of the first of the kernel's temporary-mapping slots (lowmem=: frames above lowmem are reached only through them). */
#define SMOD_STRAY_WRITE 1 /* PM SUSPEND_MODULE flag: the module plants one write into read-only memory halfway through (its isolation, tested: the write faults). */
#define SMOD_COMPRESS 2 /* PM SUSPEND_MODULE flag: the module compresses every page with LZ4 into its scratch space and writes the pages packed (image compression LZ4; docs/IMAGE-FORMAT.md). */
#define SMOD_ERR_NO_DISK 2 /* PM SUSPEND_MODULE result: there is no disk to write to. */
#define SMOD_ERR_DISK_TOO_SMALL 3 /* PM SUSPEND_MODULE result: the image would not fit on the disk. */
#define SMOD_ERR_FRAGMENTS 4 /* PM SUSPEND_MODULE result: more fragments than the swap map holds. */
#define SMOD_ERR_MEMORY 5 /* PM SUSPEND_MODULE result: too few free frames for the module, its lists, its scratch space and its page tables. */
#define KMAP_SLOTS 2 /* Temporary-mapping slots (a page each, from KMAP_BASE up). */
#define PF_NOT_MINE 0 /* Page-fault port result: not the harness's fault; the guest's own handling (report and halt). Any value but PF_HANDLED means the same. */

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <stddef.h>

/* Reported by BOOT_INFO; all addresses are physical (= virtual, identity mapped). */
struct boot_info {
    uint32_t magic; /* BOOT_INFO_MAGIC */
    uint32_t abi_version; /* ABI_VERSION the guest was built with */
    uint32_t ram_bytes; /* bytes of RAM covered by the allocator (top of the highest RAM region) */
    uint32_t frame_count; /* frames covered by the allocator (ram_bytes / PAGE_SIZE) */
    uint32_t kernel_start; /* first byte of the kernel image */
    uint32_t kernel_end; /* end of the kernel image including bss, page aligned */
    uint32_t alloc_state; /* &alloc_state */
    uint32_t cr3; /* physical address of the page directory */
    uint32_t flags; /* BOOT_FLAG_* bits */
    uint32_t task_table; /* &task_table[0] (MAX_TASKS entries of task_struct) */
    uint32_t task_count; /* slots in use */
    uint32_t saved_context; /* &saved_context */
    uint32_t trampoline_start; /* first byte of the position-independent restore trampoline */
    uint32_t trampoline_end; /* end of the trampoline */
    uint32_t gdt_base; /* GDT address */
    uint32_t idt_base; /* IDT address */
    uint32_t tss_base; /* TSS address */
    uint32_t cmdline; /* kernel copy of the multiboot command line (NUL terminated) */
    uint32_t ticks; /* &ticks (u32 timer tick counter) */
    uint32_t generation; /* &generation (u32: 0 at first boot, +1 on every resume) */
    uint32_t probe_buffer; /* kernel source buffer used by PROBES.REP_MOVS */
    uint32_t probe_buffer_bytes; /* its size */
    uint32_t cache; /* &cache_state (the reclaimable cache workload) */
    uint32_t current_task; /* &current (u32: address of the running task's task_struct, 0 before the scheduler starts) */
    uint32_t reserved_bytes; /* reserve=: the region 0 .. reserved_bytes the kernel confines itself to until RESUME_CHECK, and leaves free after a normal boot (0: none) */
    uint32_t lowmem_bytes; /* lowmem=: RAM 0 .. lowmem_bytes is mapped permanently (identity); frames above are highmem, reached only through the KMAP slots, and hold only cache pages (= ram_bytes without lowmem=; 0 means the same) */
} __attribute__((packed));
_Static_assert(sizeof(struct boot_info) == 104, "boot_info size");
_Static_assert(offsetof(struct boot_info, magic) == 0, "boot_info.magic");
_Static_assert(offsetof(struct boot_info, abi_version) == 4, "boot_info.abi_version");
_Static_assert(offsetof(struct boot_info, ram_bytes) == 8, "boot_info.ram_bytes");
_Static_assert(offsetof(struct boot_info, frame_count) == 12, "boot_info.frame_count");
_Static_assert(offsetof(struct boot_info, kernel_start) == 16, "boot_info.kernel_start");
_Static_assert(offsetof(struct boot_info, kernel_end) == 20, "boot_info.kernel_end");
_Static_assert(offsetof(struct boot_info, alloc_state) == 24, "boot_info.alloc_state");
_Static_assert(offsetof(struct boot_info, cr3) == 28, "boot_info.cr3");
_Static_assert(offsetof(struct boot_info, flags) == 32, "boot_info.flags");
_Static_assert(offsetof(struct boot_info, task_table) == 36, "boot_info.task_table");
_Static_assert(offsetof(struct boot_info, task_count) == 40, "boot_info.task_count");
_Static_assert(offsetof(struct boot_info, saved_context) == 44, "boot_info.saved_context");
_Static_assert(offsetof(struct boot_info, trampoline_start) == 48, "boot_info.trampoline_start");
_Static_assert(offsetof(struct boot_info, trampoline_end) == 52, "boot_info.trampoline_end");
_Static_assert(offsetof(struct boot_info, gdt_base) == 56, "boot_info.gdt_base");
_Static_assert(offsetof(struct boot_info, idt_base) == 60, "boot_info.idt_base");
_Static_assert(offsetof(struct boot_info, tss_base) == 64, "boot_info.tss_base");
_Static_assert(offsetof(struct boot_info, cmdline) == 68, "boot_info.cmdline");
_Static_assert(offsetof(struct boot_info, ticks) == 72, "boot_info.ticks");
_Static_assert(offsetof(struct boot_info, generation) == 76, "boot_info.generation");
_Static_assert(offsetof(struct boot_info, probe_buffer) == 80, "boot_info.probe_buffer");
_Static_assert(offsetof(struct boot_info, probe_buffer_bytes) == 84, "boot_info.probe_buffer_bytes");
_Static_assert(offsetof(struct boot_info, cache) == 88, "boot_info.cache");
_Static_assert(offsetof(struct boot_info, current_task) == 92, "boot_info.current_task");
_Static_assert(offsetof(struct boot_info, reserved_bytes) == 96, "boot_info.reserved_bytes");
_Static_assert(offsetof(struct boot_info, lowmem_bytes) == 100, "boot_info.lowmem_bytes");

/* The page-frame allocator. The harness allocates through the same fields while the guest is stopped at a hypercall. */
struct alloc_state {
    uint32_t bitmap; /* physical address of the bitmap: bit (pfn % 32) of word (pfn / 32) is 1 when the frame is in use */
    uint32_t owner_map; /* physical address of the owner byte map: one OWNERS code per frame */
    uint32_t frame_count; /* frames covered */
    uint32_t free_count; /* frames currently free */
    uint32_t next_hint; /* pfn where the next search starts */
    uint32_t zone_start; /* the guest allocates only frames zone_start .. zone_end - 1 (its own allocations; the harness may take any free frame) */
    uint32_t zone_end; /* see zone_start */
} __attribute__((packed));
_Static_assert(sizeof(struct alloc_state) == 28, "alloc_state size");
_Static_assert(offsetof(struct alloc_state, bitmap) == 0, "alloc_state.bitmap");
_Static_assert(offsetof(struct alloc_state, owner_map) == 4, "alloc_state.owner_map");
_Static_assert(offsetof(struct alloc_state, frame_count) == 8, "alloc_state.frame_count");
_Static_assert(offsetof(struct alloc_state, free_count) == 12, "alloc_state.free_count");
_Static_assert(offsetof(struct alloc_state, next_hint) == 16, "alloc_state.next_hint");
_Static_assert(offsetof(struct alloc_state, zone_start) == 20, "alloc_state.zone_start");
_Static_assert(offsetof(struct alloc_state, zone_end) == 24, "alloc_state.zone_end");

/* One slot of the task table. */
struct task_struct {
    uint32_t id; /* task id = slot index */
    uint32_t state; /* TASK_STATES */
    uint32_t kind; /* TASK_KINDS */
    uint32_t freezable; /* 1 if the freezer stops it */
    uint32_t esp; /* saved stack pointer while switched out */
    uint32_t stack_base; /* lowest address of its kernel stack */
    uint32_t stack_bytes; /* size of its kernel stack */
    uint32_t buf_base; /* workload region (header page + data), 0 if none */
    uint32_t buf_bytes; /* size of the workload region */
    uint32_t wake_tick; /* tick at which a sleeping task becomes runnable */
    uint32_t safe_sleep; /* 1 while it sleeps at a safe point: the freezer freezes it where it sleeps */
    char name[16]; /* NUL-terminated name */
    uint32_t switches; /* times the CPU was switched to it (a frozen task's count never moves) */
} __attribute__((packed));
_Static_assert(sizeof(struct task_struct) == 64, "task_struct size");
_Static_assert(offsetof(struct task_struct, id) == 0, "task_struct.id");
_Static_assert(offsetof(struct task_struct, state) == 4, "task_struct.state");
_Static_assert(offsetof(struct task_struct, kind) == 8, "task_struct.kind");
_Static_assert(offsetof(struct task_struct, freezable) == 12, "task_struct.freezable");
_Static_assert(offsetof(struct task_struct, esp) == 16, "task_struct.esp");
_Static_assert(offsetof(struct task_struct, stack_base) == 20, "task_struct.stack_base");
_Static_assert(offsetof(struct task_struct, stack_bytes) == 24, "task_struct.stack_bytes");
_Static_assert(offsetof(struct task_struct, buf_base) == 28, "task_struct.buf_base");
_Static_assert(offsetof(struct task_struct, buf_bytes) == 32, "task_struct.buf_bytes");
_Static_assert(offsetof(struct task_struct, wake_tick) == 36, "task_struct.wake_tick");
_Static_assert(offsetof(struct task_struct, safe_sleep) == 40, "task_struct.safe_sleep");
_Static_assert(offsetof(struct task_struct, name) == 44, "task_struct.name");
_Static_assert(offsetof(struct task_struct, switches) == 60, "task_struct.switches");

/* First page of a workload region ("the task's own memory"). Word j of the data (which starts one page after the header) after `steps` steps is mix(seed, j, n) = fmix32(seed ^ n*0x85EBCA6B ^ 0x5bd1e995) ^ j*0x9E3779B9, where n is the number of times the word was written after the fill. */
struct workload_header {
    uint32_t magic; /* WORKLOAD_MAGIC */
    uint32_t kind; /* TASK_KINDS */
    uint32_t seed; /* the task seed */
    uint32_t steps_lo; /* steps done, low 32 bits */
    uint32_t steps_hi; /* steps done, high 32 bits */
    uint32_t words; /* data words W */
    uint32_t perm_mul; /* odd multiplier of the permutation (1 for stream) */
    uint32_t perm_add; /* addend of the permutation (0 for stream) */
    uint32_t perm_bits; /* k: the permutation runs over [0, 2^k) and cycle-walks into [0, W) */
    uint32_t rate; /* writes per tick (0 = unlimited) */
    uint32_t verifications; /* number of verifications done */
    uint32_t last_bad; /* bad words found by the last verification */
} __attribute__((packed));
_Static_assert(sizeof(struct workload_header) == 48, "workload_header size");
_Static_assert(offsetof(struct workload_header, magic) == 0, "workload_header.magic");
_Static_assert(offsetof(struct workload_header, kind) == 4, "workload_header.kind");
_Static_assert(offsetof(struct workload_header, seed) == 8, "workload_header.seed");
_Static_assert(offsetof(struct workload_header, steps_lo) == 12, "workload_header.steps_lo");
_Static_assert(offsetof(struct workload_header, steps_hi) == 16, "workload_header.steps_hi");
_Static_assert(offsetof(struct workload_header, words) == 20, "workload_header.words");
_Static_assert(offsetof(struct workload_header, perm_mul) == 24, "workload_header.perm_mul");
_Static_assert(offsetof(struct workload_header, perm_add) == 28, "workload_header.perm_add");
_Static_assert(offsetof(struct workload_header, perm_bits) == 32, "workload_header.perm_bits");
_Static_assert(offsetof(struct workload_header, rate) == 36, "workload_header.rate");
_Static_assert(offsetof(struct workload_header, verifications) == 40, "workload_header.verifications");
_Static_assert(offsetof(struct workload_header, last_bad) == 44, "workload_header.last_bad");

/* Written by swsusp_arch_suspend, loaded by the trampoline. */
struct saved_context {
    uint32_t ebx;
    uint32_t esi;
    uint32_t edi;
    uint32_t ebp;
    uint32_t esp; /* stack pointer to resume with */
    uint32_t eip; /* resume point (returns 1 from swsusp_arch_suspend) */
    uint32_t eflags;
    uint32_t cr0;
    uint32_t cr2; /* the last page-fault address */
    uint32_t cr3;
    uint32_t cr4;
    uint32_t gdtr_limit; /* low 16 bits used */
    uint32_t gdtr_base;
    uint32_t idtr_limit; /* low 16 bits used */
    uint32_t idtr_base;
    uint32_t cs;
    uint32_t ds;
    uint32_t es;
    uint32_t fs;
    uint32_t gs;
    uint32_t ss;
    uint32_t tr; /* task register selector (the trampoline clears its descriptor's busy bit and reloads it) */
    uint32_t magic; /* CONTEXT_MAGIC once saved */
} __attribute__((packed));
_Static_assert(sizeof(struct saved_context) == 92, "saved_context size");
_Static_assert(offsetof(struct saved_context, ebx) == 0, "saved_context.ebx");
_Static_assert(offsetof(struct saved_context, esi) == 4, "saved_context.esi");
_Static_assert(offsetof(struct saved_context, edi) == 8, "saved_context.edi");
_Static_assert(offsetof(struct saved_context, ebp) == 12, "saved_context.ebp");
_Static_assert(offsetof(struct saved_context, esp) == 16, "saved_context.esp");
_Static_assert(offsetof(struct saved_context, eip) == 20, "saved_context.eip");
_Static_assert(offsetof(struct saved_context, eflags) == 24, "saved_context.eflags");
_Static_assert(offsetof(struct saved_context, cr0) == 28, "saved_context.cr0");
_Static_assert(offsetof(struct saved_context, cr2) == 32, "saved_context.cr2");
_Static_assert(offsetof(struct saved_context, cr3) == 36, "saved_context.cr3");
_Static_assert(offsetof(struct saved_context, cr4) == 40, "saved_context.cr4");
_Static_assert(offsetof(struct saved_context, gdtr_limit) == 44, "saved_context.gdtr_limit");
_Static_assert(offsetof(struct saved_context, gdtr_base) == 48, "saved_context.gdtr_base");
_Static_assert(offsetof(struct saved_context, idtr_limit) == 52, "saved_context.idtr_limit");
_Static_assert(offsetof(struct saved_context, idtr_base) == 56, "saved_context.idtr_base");
_Static_assert(offsetof(struct saved_context, cs) == 60, "saved_context.cs");
_Static_assert(offsetof(struct saved_context, ds) == 64, "saved_context.ds");
_Static_assert(offsetof(struct saved_context, es) == 68, "saved_context.es");
_Static_assert(offsetof(struct saved_context, fs) == 72, "saved_context.fs");
_Static_assert(offsetof(struct saved_context, gs) == 76, "saved_context.gs");
_Static_assert(offsetof(struct saved_context, ss) == 80, "saved_context.ss");
_Static_assert(offsetof(struct saved_context, tr) == 84, "saved_context.tr");
_Static_assert(offsetof(struct saved_context, magic) == 88, "saved_context.magic");

/* The cache workload: pages the kernel may drop when memory is short. Word w of cache page i holds cache_word(seed, i, w) = fmix32(seed ^ i*0x9E3779B9 ^ 0x27d4eb2f) ^ w*0x85EBCA6B, a function of the seed and the page index only (not of the frame), so a fresh boot with the same command line recreates the same pages. */
struct cache_state {
    uint32_t configured; /* 1 if the command line asked for a cache workload */
    uint32_t pages; /* pages the cache holds now (pages 0 .. pages-1; dropping takes the highest first) */
    uint32_t capacity; /* pages the cache was created with (entries in the table) */
    uint32_t table; /* physical address of the table of page addresses (u32 per page, KHEAP frames) */
    uint32_t seed; /* the cache seed */
} __attribute__((packed));
_Static_assert(sizeof(struct cache_state) == 20, "cache_state size");
_Static_assert(offsetof(struct cache_state, configured) == 0, "cache_state.configured");
_Static_assert(offsetof(struct cache_state, pages) == 4, "cache_state.pages");
_Static_assert(offsetof(struct cache_state, capacity) == 8, "cache_state.capacity");
_Static_assert(offsetof(struct cache_state, table) == 12, "cache_state.table");
_Static_assert(offsetof(struct cache_state, seed) == 16, "cache_state.seed");

/* Reported by EXCEPTION. */
struct exception_frame {
    uint32_t vector;
    uint32_t error_code; /* 0 if the vector pushes none */
    uint32_t eip;
    uint32_t cs;
    uint32_t eflags;
    uint32_t cr2;
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
    uint32_t esi;
    uint32_t edi;
    uint32_t ebp;
    uint32_t esp; /* ESP before the exception */
    uint32_t task_id; /* current task */
} __attribute__((packed));
_Static_assert(sizeof(struct exception_frame) == 60, "exception_frame size");
_Static_assert(offsetof(struct exception_frame, vector) == 0, "exception_frame.vector");
_Static_assert(offsetof(struct exception_frame, error_code) == 4, "exception_frame.error_code");
_Static_assert(offsetof(struct exception_frame, eip) == 8, "exception_frame.eip");
_Static_assert(offsetof(struct exception_frame, cs) == 12, "exception_frame.cs");
_Static_assert(offsetof(struct exception_frame, eflags) == 16, "exception_frame.eflags");
_Static_assert(offsetof(struct exception_frame, cr2) == 20, "exception_frame.cr2");
_Static_assert(offsetof(struct exception_frame, eax) == 24, "exception_frame.eax");
_Static_assert(offsetof(struct exception_frame, ebx) == 28, "exception_frame.ebx");
_Static_assert(offsetof(struct exception_frame, ecx) == 32, "exception_frame.ecx");
_Static_assert(offsetof(struct exception_frame, edx) == 36, "exception_frame.edx");
_Static_assert(offsetof(struct exception_frame, esi) == 40, "exception_frame.esi");
_Static_assert(offsetof(struct exception_frame, edi) == 44, "exception_frame.edi");
_Static_assert(offsetof(struct exception_frame, ebp) == 48, "exception_frame.ebp");
_Static_assert(offsetof(struct exception_frame, esp) == 52, "exception_frame.esp");
_Static_assert(offsetof(struct exception_frame, task_id) == 56, "exception_frame.task_id");

/* Page backup entry (as Linux struct pbe), built by the restore in safe pages. */
struct pbe {
    uint32_t address; /* physical address of the copy (in a safe page) */
    uint32_t orig_address; /* physical address the page belongs to */
    uint32_t next; /* physical address of the next pbe, 0 at the end */
} __attribute__((packed));
_Static_assert(sizeof(struct pbe) == 12, "pbe size");
_Static_assert(offsetof(struct pbe, address) == 0, "pbe.address");
_Static_assert(offsetof(struct pbe, orig_address) == 4, "pbe.orig_address");
_Static_assert(offsetof(struct pbe, next) == 8, "pbe.next");
#endif /* __ASSEMBLER__ */

#define OFF_BOOT_INFO_MAGIC 0
#define OFF_BOOT_INFO_ABI_VERSION 4
#define OFF_BOOT_INFO_RAM_BYTES 8
#define OFF_BOOT_INFO_FRAME_COUNT 12
#define OFF_BOOT_INFO_KERNEL_START 16
#define OFF_BOOT_INFO_KERNEL_END 20
#define OFF_BOOT_INFO_ALLOC_STATE 24
#define OFF_BOOT_INFO_CR3 28
#define OFF_BOOT_INFO_FLAGS 32
#define OFF_BOOT_INFO_TASK_TABLE 36
#define OFF_BOOT_INFO_TASK_COUNT 40
#define OFF_BOOT_INFO_SAVED_CONTEXT 44
#define OFF_BOOT_INFO_TRAMPOLINE_START 48
#define OFF_BOOT_INFO_TRAMPOLINE_END 52
#define OFF_BOOT_INFO_GDT_BASE 56
#define OFF_BOOT_INFO_IDT_BASE 60
#define OFF_BOOT_INFO_TSS_BASE 64
#define OFF_BOOT_INFO_CMDLINE 68
#define OFF_BOOT_INFO_TICKS 72
#define OFF_BOOT_INFO_GENERATION 76
#define OFF_BOOT_INFO_PROBE_BUFFER 80
#define OFF_BOOT_INFO_PROBE_BUFFER_BYTES 84
#define OFF_BOOT_INFO_CACHE 88
#define OFF_BOOT_INFO_CURRENT_TASK 92
#define OFF_BOOT_INFO_RESERVED_BYTES 96
#define OFF_BOOT_INFO_LOWMEM_BYTES 100
#define SIZEOF_BOOT_INFO 104
#define OFF_ALLOC_STATE_BITMAP 0
#define OFF_ALLOC_STATE_OWNER_MAP 4
#define OFF_ALLOC_STATE_FRAME_COUNT 8
#define OFF_ALLOC_STATE_FREE_COUNT 12
#define OFF_ALLOC_STATE_NEXT_HINT 16
#define OFF_ALLOC_STATE_ZONE_START 20
#define OFF_ALLOC_STATE_ZONE_END 24
#define SIZEOF_ALLOC_STATE 28
#define OFF_TASK_STRUCT_ID 0
#define OFF_TASK_STRUCT_STATE 4
#define OFF_TASK_STRUCT_KIND 8
#define OFF_TASK_STRUCT_FREEZABLE 12
#define OFF_TASK_STRUCT_ESP 16
#define OFF_TASK_STRUCT_STACK_BASE 20
#define OFF_TASK_STRUCT_STACK_BYTES 24
#define OFF_TASK_STRUCT_BUF_BASE 28
#define OFF_TASK_STRUCT_BUF_BYTES 32
#define OFF_TASK_STRUCT_WAKE_TICK 36
#define OFF_TASK_STRUCT_SAFE_SLEEP 40
#define OFF_TASK_STRUCT_NAME 44
#define OFF_TASK_STRUCT_SWITCHES 60
#define SIZEOF_TASK_STRUCT 64
#define OFF_WORKLOAD_HEADER_MAGIC 0
#define OFF_WORKLOAD_HEADER_KIND 4
#define OFF_WORKLOAD_HEADER_SEED 8
#define OFF_WORKLOAD_HEADER_STEPS_LO 12
#define OFF_WORKLOAD_HEADER_STEPS_HI 16
#define OFF_WORKLOAD_HEADER_WORDS 20
#define OFF_WORKLOAD_HEADER_PERM_MUL 24
#define OFF_WORKLOAD_HEADER_PERM_ADD 28
#define OFF_WORKLOAD_HEADER_PERM_BITS 32
#define OFF_WORKLOAD_HEADER_RATE 36
#define OFF_WORKLOAD_HEADER_VERIFICATIONS 40
#define OFF_WORKLOAD_HEADER_LAST_BAD 44
#define SIZEOF_WORKLOAD_HEADER 48
#define OFF_SAVED_CONTEXT_EBX 0
#define OFF_SAVED_CONTEXT_ESI 4
#define OFF_SAVED_CONTEXT_EDI 8
#define OFF_SAVED_CONTEXT_EBP 12
#define OFF_SAVED_CONTEXT_ESP 16
#define OFF_SAVED_CONTEXT_EIP 20
#define OFF_SAVED_CONTEXT_EFLAGS 24
#define OFF_SAVED_CONTEXT_CR0 28
#define OFF_SAVED_CONTEXT_CR2 32
#define OFF_SAVED_CONTEXT_CR3 36
#define OFF_SAVED_CONTEXT_CR4 40
#define OFF_SAVED_CONTEXT_GDTR_LIMIT 44
#define OFF_SAVED_CONTEXT_GDTR_BASE 48
#define OFF_SAVED_CONTEXT_IDTR_LIMIT 52
#define OFF_SAVED_CONTEXT_IDTR_BASE 56
#define OFF_SAVED_CONTEXT_CS 60
#define OFF_SAVED_CONTEXT_DS 64
#define OFF_SAVED_CONTEXT_ES 68
#define OFF_SAVED_CONTEXT_FS 72
#define OFF_SAVED_CONTEXT_GS 76
#define OFF_SAVED_CONTEXT_SS 80
#define OFF_SAVED_CONTEXT_TR 84
#define OFF_SAVED_CONTEXT_MAGIC 88
#define SIZEOF_SAVED_CONTEXT 92
#define OFF_CACHE_STATE_CONFIGURED 0
#define OFF_CACHE_STATE_PAGES 4
#define OFF_CACHE_STATE_CAPACITY 8
#define OFF_CACHE_STATE_TABLE 12
#define OFF_CACHE_STATE_SEED 16
#define SIZEOF_CACHE_STATE 20
#define OFF_EXCEPTION_FRAME_VECTOR 0
#define OFF_EXCEPTION_FRAME_ERROR_CODE 4
#define OFF_EXCEPTION_FRAME_EIP 8
#define OFF_EXCEPTION_FRAME_CS 12
#define OFF_EXCEPTION_FRAME_EFLAGS 16
#define OFF_EXCEPTION_FRAME_CR2 20
#define OFF_EXCEPTION_FRAME_EAX 24
#define OFF_EXCEPTION_FRAME_EBX 28
#define OFF_EXCEPTION_FRAME_ECX 32
#define OFF_EXCEPTION_FRAME_EDX 36
#define OFF_EXCEPTION_FRAME_ESI 40
#define OFF_EXCEPTION_FRAME_EDI 44
#define OFF_EXCEPTION_FRAME_EBP 48
#define OFF_EXCEPTION_FRAME_ESP 52
#define OFF_EXCEPTION_FRAME_TASK_ID 56
#define SIZEOF_EXCEPTION_FRAME 60
#define OFF_PBE_ADDRESS 0
#define OFF_PBE_ORIG_ADDRESS 4
#define OFF_PBE_NEXT 8
#define SIZEOF_PBE 12

#endif /* HIBERLAB_ABI_H */
