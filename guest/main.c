/*
 * Boot: from the multiboot entry to the scheduler. The order matters:
 * the command line is copied out of low memory first; interrupts stay off
 * until the scheduler starts; the harness sees the machine (BOOT_INFO) once
 * allocator, paging, TSS and the two system tasks exist, and may then take
 * the boot over to resume an image (RESUME_CHECK) before any workload has
 * allocated memory.
 */
#include "kernel.h"
#include "hypercall.h"
#include "x86.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

struct boot_info boot_info;

/* Body of task 0: halt until the next interrupt, forever; the timer switches away when work appears. */
static void idle_task(uint32_t arg)
{
    (void)arg;
    for (;;)
        __asm__ volatile("sti; hlt");
}

/* Fill the probe buffer with a recognisable pattern (word i = fmix32(i)). */
static void probe_buffer_init(void)
{
    uint32_t i, *w = (uint32_t *)probe_buffer;
    for (i = 0; i < PROBE_BUFFER_BYTES / 4; i++)
        w[i] = fmix32(i);
}

/* Describe the machine for the harness: every field of struct boot_info. */
static void boot_info_init(uint32_t flags)
{
    struct boot_info *b = &boot_info;

    b->magic = BOOT_INFO_MAGIC;
    b->abi_version = ABI_VERSION;
    b->ram_bytes = ram_bytes;
    b->frame_count = alloc_state.frame_count;
    b->kernel_start = (uint32_t)kernel_start;
    b->kernel_end = (uint32_t)kernel_end;
    b->alloc_state = (uint32_t)&alloc_state;
    b->cr3 = kernel_cr3;
    b->flags = flags;
    b->task_table = (uint32_t)task_table;
    b->task_count = task_count;
    b->saved_context = (uint32_t)&saved_context;
    b->trampoline_start = (uint32_t)trampoline_start;
    b->trampoline_end = (uint32_t)trampoline_end;
    b->gdt_base = (uint32_t)gdt;
    b->idt_base = (uint32_t)idt;
    b->tss_base = (uint32_t)tss;
    b->cmdline = (uint32_t)cmdline;
    b->ticks = (uint32_t)&ticks;
    b->generation = (uint32_t)&generation;
    b->probe_buffer = (uint32_t)probe_buffer;
    b->probe_buffer_bytes = PROBE_BUFFER_BYTES;
    b->cache = (uint32_t)&cache_state;
    b->current_task = (uint32_t)&current;
}

/* Called by entry.S on the boot stack with interrupts off. Never returns. */
void main(uint32_t magic, uint32_t mbi)
{
    char pages[8];
    uint32_t seed = 0, crash = 0, flags = 0, reserve = 0, lowmem = 0;
    struct hc_regs r;

    cmdline_init(mbi);
    idt_init();
    pic_init();
    console_init();
    kprintf("\nhiberlab guest, abi %d\ncmdline: %s\n", ABI_VERSION, cmdline);
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
        panic("main: not loaded by a multiboot loader");
    if (trampoline_end - trampoline_start > TRAMPOLINE_PD_SLOT)
        panic("main: trampoline does not leave its page's last word free");

    if (cmdline_get("pages", pages, sizeof(pages))) {
        if (strncmp(pages, "4m", 3) == 0)
            flags |= BOOT_FLAG_LARGE_PAGES;
        else if (strncmp(pages, "4k", 3) != 0)
            panic("main: pages= must be 4k or 4m");
    }
    cmdline_u32("seed", &seed);
    cmdline_u32("crash", &crash);
    cmdline_u32("reserve", &reserve);
    cmdline_u32("lowmem", &lowmem);
    pm_crash_after_ready = (int)crash;

    alloc_init(mbi);
    if (lowmem && PGROUNDDOWN(lowmem) < ram_bytes) {
        /* Only lowmem is mapped for good; the kernel's own allocations stay there. */
        lowmem_bytes = PGROUNDDOWN(lowmem);
        if (lowmem_bytes <= alloc_state.owner_map + PGROUNDUP(alloc_state.frame_count) + 0x100000)
            panic("main: lowmem= must leave the kernel a MiB above its allocator");
        alloc_set_zone(0, lowmem_bytes / PAGE_SIZE);
    }
    if (reserve) {
        /* Until RESUME_CHECK the kernel lives in the reserved region: a boot kernel never leaves it. */
        reserve = PGROUNDDOWN(reserve);
        if (reserve >= lowmem_bytes || reserve <= (uint32_t)kernel_end)
            panic("main: reserve= must lie above the kernel and below the top of RAM (and of lowmem)");
        alloc_set_zone(0, reserve / PAGE_SIZE);
    }
    paging_init(flags & BOOT_FLAG_LARGE_PAGES);
    tss_init();
    kprintf("memory: %u KiB RAM, %u frames, %u free; kernel %p-%p; cr3 %p; %s pages\n",
            ram_bytes / 1024, alloc_state.frame_count, alloc_state.free_count,
            kernel_start, kernel_end, (void *)kernel_cr3,
            (flags & BOOT_FLAG_LARGE_PAGES) ? "4 MiB" : "4 KiB");
    ata_init();
    probe_buffer_init();
    workloads_create(seed, 1);          /* the caches read at boot: a boot kernel has them too */

    task_create("idle", KIND_IDLE, 0, idle_task, 0);
    pm_task_struct = task_create("pm", KIND_PM, 0, pm_task, 0);

    boot_info_init(flags);
    boot_info.reserved_bytes = reserve;
    boot_info.lowmem_bytes = lowmem_bytes;
    hypercall(HC_BOOT_INFO, (uint32_t)&boot_info, 0, 0, 0);

    r = hypercall_regs(HC_RESUME_CHECK, 0, 0, 0, 0);
    if (r.eax == 1) {
        resume_enter(r.ebx, r.ecx, r.esi, r.edi);
    }
    if (r.eax == 2) {
        /* The harness loads the image while this kernel runs on; it jumps on PM RESUME. */
        resume_pending = 1;
        kprintf("resume: loading while running\n");
        if (cache_state.pages)
            task_create("kcached", KIND_IDLE, 0, cache_refresh_task, 0);
    } else {
        if (reserve)    /* a normal boot: the reserved region is left free from here on */
            alloc_set_zone(reserve / PAGE_SIZE, lowmem_bytes / PAGE_SIZE);
        workloads_create(seed, 0);
    }
    pit_init();
    kprintf("boot: %u tasks, %u free frames; starting the scheduler\n", task_count, alloc_state.free_count);
    sched_start();
}
