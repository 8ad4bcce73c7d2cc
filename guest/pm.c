/*
 * The power-management task. It polls the harness every tick (PM_POLL), and at
 * once when the harness raises PM_REQUEST_IRQ (a power button's interrupt); when
 * a hibernation is requested it runs pm_loop(), which executes the PM_*
 * commands the harness hands out one at a time (PM_NEXT, with the previous
 * command's result in EBX) until PM_DONE, or until the kernel wakes up from
 * an image (ATOMIC returning on the resume path).
 */
#include "kernel.h"
#include "hypercall.h"
#include "x86.h"

#define PROBE_VALUE 0x424F5250u         /* "PROB" in memory */
#define CRASH_ADDRESS 0xDEAD0000u       /* above any RAM v86 can have: never mapped */

volatile uint32_t generation;
uint8_t probe_buffer[PROBE_BUFFER_BYTES] __attribute__((aligned(PAGE_SIZE)));
int pm_crash_after_ready;
int resume_pending;         /* RESUME_CHECK said 2: no workloads, no READY; PM RESUME jumps */

/* Run one PROBES pattern at addr (len bytes where the pattern takes a length); exactly its accesses, nothing else. */
static void probe(uint32_t pattern, uint32_t addr, uint32_t len)
{
    uint32_t v = PROBE_VALUE, count;
    const void *src = probe_buffer;
    void *dst = (void *)addr;

    switch (pattern) {
    case PROBE_WRITE_ONCE:
    case PROBE_STRADDLE:
        __asm__ volatile("movl %1, (%0)" : : "r"(addr), "r"(v) : "memory");
        break;
    case PROBE_WRITE_TWICE:
        __asm__ volatile("movl %1, (%0)\n\tmovl %2, (%0)" : : "r"(addr), "r"(v), "r"(~v) : "memory");
        break;
    case PROBE_READ_THEN_WRITE:
        __asm__ volatile("movl (%1), %0\n\taddl $1, %0\n\tmovl %0, (%1)" : "=&r"(v) : "r"(addr) : "memory");
        break;
    case PROBE_REP_MOVS:
        if (len > PROBE_BUFFER_BYTES || len % 4)
            panic("probe: REP_MOVS length must be a multiple of 4 up to 64 KiB");
        count = len / 4;
        __asm__ volatile("cld; rep movsl" : "+S"(src), "+D"(dst), "+c"(count) : : "memory");
        break;
    case PROBE_WRITE_PAGES:
        if (addr % PAGE_SIZE)
            panic("probe: WRITE_PAGES address must be page aligned");
        for (count = 0; count < len; count += PAGE_SIZE)
            __asm__ volatile("movl %1, (%0)" : : "r"(addr + count), "r"(v) : "memory");
        break;
    case PROBE_READ_ONLY:
        for (count = 0; count < len / 4; count++, addr += 4)
            __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
        break;
    default:
        panic("probe: unknown pattern");
    }
}

/*
 * The resume path, right after swsusp_arch_suspend() returned 1 (the trampoline
 * restored the CPU context, TR included): re-initialise devices, report, verify, thaw.
 */
static void resumed(void)
{
    generation++;
    pic_init();
    pit_init();
    console_init();
    sti();
    kprintf("pm: resumed from an image, generation %u\n", generation);
    hypercall(HC_RESUMED, generation, 0, 0, 0);
    alloc_check();
    cache_verify();
    workload_request_verify_all();
    thaw_tasks(0xFFFFFFFFu);
}

/*
 * The boot kernel's last act: interrupts off, the highmem PBE list copied here, in C,
 * through the KMAP slots (the trampoline copies with paging on, on a map of lowmem
 * only, and cannot reach those frames: the "C code a bit earlier" of Linux's 32-bit
 * restore), then into the trampoline. Nothing of this kernel that the copy overwrites
 * (highmem: its cache pages) is used again.
 */
void resume_enter(uint32_t trampoline, uint32_t pbe_head, uint32_t ctx, uint32_t high_pbe_head)
{
    const struct pbe *p;
    uint32_t n = 0;

    cli();
    kprintf("resume: trampoline %p, pbe list %p, highmem pbe list %p, context %p\n",
            (void *)trampoline, (void *)pbe_head, (void *)high_pbe_head, (void *)ctx);
    for (p = (const struct pbe *)high_pbe_head; p; p = (const struct pbe *)p->next, n++) {
        memcpy(kmap(1, p->orig_address), kmap(0, p->address), PAGE_SIZE);
        kunmap(0);
        kunmap(1);
    }
    if (n)
        kprintf("resume: %u highmem pages copied\n", n);
    resume_jump(trampoline, pbe_head, ctx);
}

/* Execute PM commands until PM_DONE, or until the kernel was resumed from an image. */
static void pm_loop(void)
{
    uint32_t result = 0;

    for (;;) {
        struct hc_regs r = hypercall_regs(HC_PM_NEXT, result, 0, 0, 0);
        result = 0;
        switch (r.eax) {
        case PM_DONE:
            alloc_check();
            return;
        case PM_FREEZE:
            result = freeze_tasks();
            kprintf("pm: froze %u tasks\n", result);
            hypercall(HC_FREEZE_DONE, result, 0, 0, 0);
            break;
        case PM_THAW:
            result = thaw_tasks(r.ebx);
            kprintf("pm: thawed %u tasks (mask %x)\n", result, r.ebx);
            break;
        case PM_DROP_CACHE:
            result = drop_cache(r.ebx);
            kprintf("pm: dropped %u cache pages, %u free frames\n", result, alloc_state.free_count);
            break;
        case PM_RUN:
            sleep_ticks(r.ebx);
            break;
        case PM_ATOMIC:
            cli();
            if (swsusp_arch_suspend() != 0) {
                resumed();
                return;
            }
            sti();
            break;
        case PM_SUSPEND_MODULE:
            cli();
            result = suspend_module(r.ebx, r.ecx, r.esi, r.edi);
            if (result == SMOD_RESUMED) {
                resumed();
                return;
            }
            kprintf("pm: the suspend module cannot begin (%u)\n", result);
            sti();
            break;
        case PM_POWER_OFF:
            kprintf("pm: power off\n");
            hypercall(HC_POWER_OFF, 0, 0, 0, 0);
            halt_forever();
        case PM_PROBE:
            probe(r.ebx, r.ecx, r.esi);
            break;
        case PM_VERIFY:
            cache_verify();
            workload_request_verify_all();
            break;
        case PM_RESUME:
            if (!resume_pending)
                panic("pm: RESUME without a pending resume");
            resume_enter(r.ebx, r.ecx, r.esi, r.edi);
        default:
            panic("pm: unknown command");
        }
    }
}

/*
 * Planted failures for the harness's tests (cmdline crash=N), run after READY:
 * 1 an unhandled page fault (a store to an unmapped address); 2 a triple fault
 * (an empty IDT, then int3); 3 a fault while delivering a fault (the current stack
 * page made read-only, then a push). Never returns.
 */
static void crash(int mode)
{
    kprintf("pm: crash=%d\n", mode);
    if (mode == 2) {
        struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };
        __asm__ volatile("lidt %0; int3" : : "m"(empty));
    } else if (mode == 3) {
        uint32_t esp;
        __asm__ volatile("movl %%esp, %0" : "=r"(esp));
        uint32_t *pte = paging_pte(esp - 64);
        if (!pte)
            panic("crash=3 needs 4 KiB pages");
        *pte &= ~PTE_W;
        __asm__ volatile("invlpg (%0)" : : "r"(esp - 64) : "memory");
        __asm__ volatile("pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0;"
                         "pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0; pushl $0;"
                         "pushl $0; pushl $0; pushl $0; pushl $0" : : : "memory");
    }
    *(volatile uint32_t *)CRASH_ADDRESS = 0;
    panic("crash: still alive");
}

struct task_struct *pm_task_struct;
/* Set by PM_REQUEST_IRQ, cleared by the pm task when it polls: a request never waits for a tick. */
static volatile int pm_request_pending;

/*
 * PM_REQUEST_IRQ (interrupts off): the harness asks for hibernation. Note it and
 * switch to the pm task, so that its PM_POLL comes now rather than at the next tick.
 */
void pm_request_interrupt(void)
{
    pm_request_pending = 1;
    if (pm_task_struct)
        wake_up_now(pm_task_struct);
}

/* Sleep until the next tick, or not at all if a request came since the last poll. */
static void pm_wait(void)
{
    uint32_t f = irq_save();   /* the check and the sleep: no request can fall between them */

    if (!pm_request_pending)
        sleep_ticks(1);
    pm_request_pending = 0;
    irq_restore(f);
}

/* Body of the pm task: wait for the workloads' first fill, say READY, then poll every tick (or when woken by PM_REQUEST_IRQ). */
void pm_task(uint32_t arg)
{
    (void)arg;
    while (workloads_filled < workload_count)
        sleep_ticks(1);
    if (!resume_pending) {
        kprintf("pm: ready, %u workload tasks, %u free frames\n", workload_count, alloc_state.free_count);
        hypercall(HC_READY, workload_count, 0, 0, 0);
    }
    if (pm_crash_after_ready)
        crash(pm_crash_after_ready);
    for (;;) {
        pm_wait();
        if (hypercall(HC_PM_POLL, 0, 0, 0, 0))
            pm_loop();
    }
}
