/*
 * Tasks, the scheduler and the freezer.
 *
 * A task is a slot of task_table (layout fixed by the ABI so the harness can
 * read it) plus its entry point here. Every task has its own 16 KiB kernel
 * stack from the allocator; everything runs in ring 0. Scheduling is
 * round-robin: IRQ0 (HZ per second) wakes sleepers and switches to the next
 * runnable task; tasks also give up the CPU with yield() and sleep_ticks().
 * Task 0 is the idle task (hlt loop), always runnable, chosen only when
 * nothing else is.
 *
 * The freezer: freeze_tasks() raises `freezing` and waits until every
 * freezable task has stopped itself in try_to_freeze(), which the tasks call
 * at their safe points (between whole workload steps). A task that sleeps at
 * a safe point (sleep_ticks_freezable, Linux's TASK_FREEZABLE sleep) is frozen
 * where it sleeps, at once; any other sleeper is not stopped from outside: it
 * wakes, reaches its next safe point and freezes there. While a freezable task
 * is still running toward its safe point the freezer yields to it rather than
 * sleeping a tick. A frozen task stays FROZEN until thaw_tasks() picks it; the
 * scheduler never runs it meanwhile; thawed from a sleep, it returns from the
 * sleep early.
 */
#include "kernel.h"
#include "x86.h"
#include "hypercall.h"

struct task_struct task_table[MAX_TASKS];
struct task_struct *current;
volatile uint32_t task_count;
volatile int freezing;

static void (*task_fn[MAX_TASKS])(uint32_t);
static uint32_t task_arg[MAX_TASKS];

extern void task_start(void);     /* swtch.S: calls task_entry() */

/* Disable interrupts; return the previous EFLAGS for irq_restore(). */
uint32_t irq_save(void)
{
    uint32_t f = read_eflags();
    cli();
    return f;
}

/* Re-enable interrupts if flags (from irq_save) had them on. */
void irq_restore(uint32_t flags)
{
    if (flags & FL_IF)
        sti();
}

/* First code of every task: interrupts on, run its function, which must never return. */
void task_entry(void)
{
    sti();
    task_fn[current->id](task_arg[current->id]);
    panic("task returned");
}

/* Create a RUNNABLE task in the next free slot with a fresh 16 KiB stack; return it. Panics if full. */
struct task_struct *task_create(const char *name, int kind, int freezable, void (*fn)(uint32_t), uint32_t arg)
{
    struct task_struct *t;
    uint32_t *sp, stack;
    uint32_t id = task_count;

    if (id >= MAX_TASKS)
        panic("task_create: task table full");
    stack = alloc_contig(KSTACK_PAGES, OWNER_KSTACK);
    if (stack == 0)
        panic("task_create: no memory for a stack");
    t = &task_table[id];
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->kind = kind;
    t->freezable = freezable;
    t->stack_base = stack;
    t->stack_bytes = KSTACK_PAGES * PAGE_SIZE;
    safestrcpy(t->name, name, sizeof(t->name));
    task_fn[id] = fn;
    task_arg[id] = arg;

    /* The frame swtch() pops: edi, esi, ebx, ebp, return address. */
    sp = (uint32_t *)(stack + t->stack_bytes);
    *--sp = (uint32_t)task_start;
    *--sp = 0;                      /* ebp */
    *--sp = 0;                      /* ebx */
    *--sp = 0;                      /* esi */
    *--sp = 0;                      /* edi */
    t->esp = (uint32_t)sp;
    t->state = TASK_RUNNABLE;
    task_count = id + 1;
    boot_info.task_count = task_count;
    return t;
}

/* Leave the boot stack for good and run task 0 (idle). Never returns. */
void sched_start(void)
{
    static struct task_struct boot;     /* receives the boot stack's ESP, never resumed */

    if (task_count == 0 || task_table[0].kind != KIND_IDLE)
        panic("sched_start: no idle task");
    cli();
    current = &task_table[0];
    current->switches++;
    swtch(&boot, current);
    panic("sched_start: boot stack resumed");
}

/* Return the next RUNNABLE task after current in round-robin order, idle if there is none. */
static struct task_struct *pick_next(void)
{
    uint32_t i;
    for (i = 1; i <= MAX_TASKS; i++) {
        struct task_struct *t = &task_table[(current->id + i) % MAX_TASKS];
        if (t->id != 0 && t->state == TASK_RUNNABLE)
            return t;
    }
    return &task_table[0];
}

/* Switch to the next runnable task (maybe current itself). Interrupts must be off. */
void schedule(void)
{
    struct task_struct *prev = current, *next;

    if (read_eflags() & FL_IF)
        panic("schedule: interrupts on");
    next = pick_next();
    if (next == prev)
        return;
    current = next;
    next->switches++;
    swtch(prev, next);
}

/*
 * Timer tick (IRQ0, interrupts off): count it, wake the sleepers whose time
 * came, preempt. The pm task is never preempted by the tick (like a SCHED_FIFO
 * kernel thread): it runs only to serve a hibernation request and gives up the
 * CPU itself when it sleeps or yields. Preempted, it would lose a whole time
 * slice (1/HZ) to a workload task right at the start of the freeze, where a
 * tick that came due while the machine was stopped lands.
 */
void sched_tick(void)
{
    uint32_t i;

    ticks++;
    for (i = 0; i < task_count; i++) {
        struct task_struct *t = &task_table[i];
        if (t->state == TASK_SLEEPING && (int32_t)(ticks - t->wake_tick) >= 0)
            t->state = TASK_RUNNABLE;
    }
    if (current && current->kind != KIND_PM)
        schedule();
}

/*
 * Make t run now (interrupts off, from an interrupt handler): a sleeping t wakes
 * before its time, and the CPU switches to it; the interrupted task stays
 * runnable and gets its turn in round-robin order. A frozen t stays frozen.
 */
void wake_up_now(struct task_struct *t)
{
    struct task_struct *prev = current;

    if (read_eflags() & FL_IF)
        panic("wake_up_now: interrupts on");
    if (t->state == TASK_SLEEPING)
        t->state = TASK_RUNNABLE;
    if (t->state != TASK_RUNNABLE || t == prev)
        return;
    current = t;
    t->switches++;
    swtch(prev, t);
}

/* Give up the CPU to the next runnable task; return when scheduled again. */
void yield(void)
{
    uint32_t f = irq_save();
    schedule();
    irq_restore(f);
}

/* Sleep until n ticks have passed (n = 0: just yield). */
void sleep_ticks(uint32_t n)
{
    uint32_t f = irq_save();

    if (n > 0) {
        current->wake_tick = ticks + n;
        current->state = TASK_SLEEPING;
    }
    schedule();
    irq_restore(f);
}

/*
 * Sleep n ticks (n > 0) at a safe point of a freezable task: the freezer may
 * freeze the task right here, and freezes it at once if it is already on.
 */
void sleep_ticks_freezable(uint32_t n)
{
    uint32_t f = irq_save();

    if (!current->freezable)
        panic("sleep_ticks_freezable: task is not freezable");
    current->wake_tick = ticks + (n ? n : 1);
    current->state = freezing ? TASK_FROZEN : TASK_SLEEPING;
    current->safe_sleep = 1;
    while (current->state != TASK_RUNNABLE)
        schedule();
    current->safe_sleep = 0;
    irq_restore(f);
}

/* Safe point of a freezable task: if the freezer is on, stop here until thawed. */
void try_to_freeze(void)
{
    uint32_t f;

    if (!freezing)
        return;
    if (!current->freezable)
        panic("try_to_freeze: task is not freezable");
    f = irq_save();
    if (freezing) {
        current->state = TASK_FROZEN;
        while (current->state == TASK_FROZEN)
            schedule();
    }
    irq_restore(f);
}

/* Count freezable tasks, and how many of them are FROZEN. */
static uint32_t count_frozen(uint32_t *freezable)
{
    uint32_t i, frozen = 0, n = 0;
    for (i = 0; i < task_count; i++) {
        if (!task_table[i].freezable)
            continue;
        n++;
        frozen += task_table[i].state == TASK_FROZEN;
    }
    *freezable = n;
    return frozen;
}

/*
 * One freezer pass (interrupts off): freeze the tasks sleeping at a safe point
 * (or woken from that sleep but not run yet) where they are; return how many freezable tasks are not frozen yet, and in
 * *running how many of those are runnable (on their way to a safe point).
 */
static uint32_t freeze_sleepers(uint32_t *running)
{
    uint32_t i, left = 0;

    *running = 0;
    for (i = 0; i < task_count; i++) {
        struct task_struct *t = &task_table[i];
        if (!t->freezable || t->state == TASK_FROZEN)
            continue;
        /* Asleep at its safe point, or woken and not yet run: it is still there. */
        if (t->safe_sleep && (t->state == TASK_SLEEPING || t->state == TASK_RUNNABLE)) {
            t->state = TASK_FROZEN;
            continue;
        }
        left++;
        *running += t->state == TASK_RUNNABLE;
    }
    return left;
}

/*
 * Freeze every freezable task; return how many. Sleepers at a safe point freeze
 * where they are; for runnable tasks the freezer yields until each has reached
 * its safe point; only when every task left is asleep elsewhere does it sleep a
 * tick.
 */
uint32_t freeze_tasks(void)
{
    uint32_t n, running, f;

    if (current->freezable)
        panic("freeze_tasks: called by a freezable task");
    freezing = 1;
    for (;;) {
        f = irq_save();
        n = freeze_sleepers(&running);
        irq_restore(f);
        if (n == 0)
            break;
        if (running)
            yield();
        else
            sleep_ticks(1);
    }
    return count_frozen(&n);
}

/* Stop freezing and thaw the FROZEN tasks whose bit is set in mask; return how many were thawed. */
uint32_t thaw_tasks(uint32_t mask)
{
    uint32_t i, thawed = 0, f = irq_save();

    freezing = 0;
    for (i = 0; i < task_count && i < 32; i++) {
        if ((mask >> i) & 1 && task_table[i].state == TASK_FROZEN) {
            task_table[i].state = TASK_RUNNABLE;
            thawed++;
        }
    }
    hypercall(HC_THAWED, thawed, 0, 0, 0);   /* the instant they can run: before the next tick can switch */
    irq_restore(f);
    return thawed;
}
