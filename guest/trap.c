/*
 * The IDT and the C side of every interrupt. Exceptions are fatal: reported to
 * the harness by the EXCEPTION hypercall, printed, then the CPU halts. IRQs are
 * acknowledged at the PIC; IRQ0 drives the scheduler.
 */
#include "kernel.h"
#include "hypercall.h"
#include "x86.h"

#define NVECTORS 48
#define T_IRQ0 32
#define GATE_INT32 0x8E         /* present, DPL 0, 32-bit interrupt gate (IF cleared on entry) */

/* What vectors.S leaves on the stack; lowest address first. */
struct trapframe {
    uint32_t edi, esi, ebp, oesp, ebx, edx, ecx, eax;   /* pushal */
    uint32_t vector, err;
    uint32_t eip, cs, eflags;                           /* pushed by the CPU, same ring: no ss:esp */
};

uint64_t idt[256] __attribute__((aligned(8)));
extern uint32_t vectors[NVECTORS];
static struct exception_frame exception_frame;

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound",
    "#UD invalid opcode", "#NM no FPU", "#DF double fault", "coprocessor overrun",
    "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
    "#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment", "#MC machine check",
    "#XM SIMD", "#VE virtualisation", "#CP control protection", "reserved 22", "reserved 23",
    "reserved 24", "reserved 25", "reserved 26", "reserved 27", "reserved 28", "reserved 29",
    "reserved 30", "reserved 31",
};

/* Fill the IDT with interrupt gates for vectors 0-47 (others not present) and load it. */
void idt_init(void)
{
    int i;
    memset(idt, 0, sizeof(idt));
    for (i = 0; i < NVECTORS; i++) {
        uint32_t off = vectors[i];
        idt[i] = (off & 0xFFFF) | ((uint64_t)SEG_KCODE << 16) |
                 ((uint64_t)GATE_INT32 << 40) | ((uint64_t)(off >> 16) << 48);
    }
    lidt(idt, sizeof(idt) - 1);
}

/* Report an exception to the harness and the console, then halt. Never returns. */
static void exception(struct trapframe *tf)
{
    struct exception_frame *f = &exception_frame;

    f->vector = tf->vector;
    f->error_code = tf->err;
    f->eip = tf->eip;
    f->cs = tf->cs;
    f->eflags = tf->eflags;
    f->cr2 = rcr2();
    f->eax = tf->eax;
    f->ebx = tf->ebx;
    f->ecx = tf->ecx;
    f->edx = tf->edx;
    f->esi = tf->esi;
    f->edi = tf->edi;
    f->ebp = tf->ebp;
    f->esp = (uint32_t)&tf->eflags + 4;
    f->task_id = current ? current->id : 0xFFFFFFFFu;
    hypercall(HC_EXCEPTION, (uint32_t)f, 0, 0, 0);
    kprintf("\nexception %u (%s) err=%x eip=%p cr2=%p task=%d\n"
            "eax=%08x ebx=%08x ecx=%08x edx=%08x esi=%08x edi=%08x ebp=%08x esp=%08x eflags=%08x\n",
            f->vector, exception_names[f->vector & 31], f->error_code, (void *)f->eip, (void *)f->cr2,
            (int)f->task_id, f->eax, f->ebx, f->ecx, f->edx, f->esi, f->edi, f->ebp, f->esp, f->eflags);
    halt_forever();
}

/* Called by alltraps with interrupts off for every vector. */
void trap(struct trapframe *tf)
{
    int irq;

    if (tf->vector < T_IRQ0)
        exception(tf);
    irq = tf->vector - T_IRQ0;
    if ((irq == 7 || irq == 15) && pic_spurious(irq))
        return;
    pic_eoi(irq);
    if (irq == 0)
        sched_tick();
    else if (irq == PM_REQUEST_IRQ)
        pm_request_interrupt();
}
