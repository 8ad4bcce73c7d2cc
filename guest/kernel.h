/* Kernel-wide definitions and the prototypes of every subsystem. */
#ifndef KERNEL_H
#define KERNEL_H

#define SEG_KCODE 0x08
#define SEG_KDATA 0x10
#define SEG_TSS   0x18

#define BOOT_STACK_BYTES 16384
#define KSTACK_PAGES 4                      /* 16 KiB per task */
#define PROBE_BUFFER_BYTES 65536
#define CMDLINE_MAX 1024

#ifndef __ASSEMBLER__
#include "abi.h"

#define NULL ((void *)0)
#define PGROUNDUP(a) (((a) + PAGE_SIZE - 1) & ~(uint32_t)(PAGE_SIZE - 1))
#define PGROUNDDOWN(a) ((a) & ~(uint32_t)(PAGE_SIZE - 1))
#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

/* linker.ld / entry.S */
extern char kernel_start[], kernel_end[];
extern uint64_t gdt[];

/* console.c */
void console_init(void);
void console_putc(int c);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void panic(const char *msg) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

/* string.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
char *safestrcpy(char *dst, const char *src, int n);

/* cmdline.c */
void cmdline_init(uint32_t mbi);
extern char cmdline[CMDLINE_MAX];
int cmdline_get(const char *key, char *out, int outlen);
int cmdline_u32(const char *key, uint32_t *out);
int parse_u32(const char **sp, uint32_t *out);

/* gdt.c */
void tss_init(void);
extern uint32_t tss[26];

/* trap.c, vectors.S */
void idt_init(void);
extern uint64_t idt[256];

/* pic.c */
void pic_init(void);
void pic_eoi(int irq);
int pic_spurious(int irq);

/* pit.c */
void pit_init(void);
extern volatile uint32_t ticks;

/* alloc.c */
extern struct alloc_state alloc_state;
extern uint32_t ram_bytes;
extern uint32_t lowmem_bytes;
void alloc_init(uint32_t mbi);
uint32_t alloc_page(int owner);
uint32_t alloc_high_page(int owner);
uint32_t alloc_contig(uint32_t n, int owner);
void free_page(uint32_t addr);
void free_contig(uint32_t addr, uint32_t n);
void alloc_check(void);
void alloc_set_zone(uint32_t start, uint32_t end);

/* paging.c */
void paging_init(int large_pages);
uint32_t *paging_pte(uint32_t va);
void *kmap(int slot, uint32_t pa);
void kunmap(int slot);
#define PTE_P 0x001
#define PTE_W 0x002
extern uint32_t kernel_cr3;

/* ata.c */
void ata_init(void);
int ata_read(uint32_t lba, uint32_t count, void *buf);
int ata_write(uint32_t lba, uint32_t count, const void *buf);
uint32_t ata_sector_count(void);

/* suspend.c */
#define SMOD_RESUMED 1
uint32_t suspend_module(uint32_t flags, uint32_t fragments, uint32_t ident, uint32_t frozen);
void smod_return(void);

/* task.c */
extern struct task_struct task_table[MAX_TASKS];
extern struct task_struct *current;
extern volatile uint32_t task_count;
extern volatile int freezing;
struct task_struct *task_create(const char *name, int kind, int freezable, void (*fn)(uint32_t), uint32_t arg);
void sched_start(void) __attribute__((noreturn));
void sched_tick(void);
void schedule(void);
void wake_up_now(struct task_struct *t);
void yield(void);
void sleep_ticks(uint32_t n);
void sleep_ticks_freezable(uint32_t n);
void try_to_freeze(void);
uint32_t freeze_tasks(void);
uint32_t thaw_tasks(uint32_t mask);
void swtch(struct task_struct *prev, struct task_struct *next);
uint32_t irq_save(void);
void irq_restore(uint32_t flags);

/* workload.c */
void workloads_create(uint32_t seed, int at_boot);
void cache_refresh_task(uint32_t arg);
void workload_request_verify_all(void);
uint32_t drop_cache(uint32_t n);
void cache_verify(void);
extern struct cache_state cache_state;
extern volatile uint32_t workload_count;
extern volatile uint32_t workloads_filled;
uint32_t fmix32(uint32_t h);

/* pm.c */
void pm_task(uint32_t arg);
void pm_request_interrupt(void);
extern struct task_struct *pm_task_struct;
extern volatile uint32_t generation;
extern int pm_crash_after_ready;
extern int resume_pending;
extern uint8_t probe_buffer[PROBE_BUFFER_BYTES];

/* swsusp.S */
extern struct saved_context saved_context;
int swsusp_arch_suspend(void);
void resume_jump(uint32_t trampoline, uint32_t pbe_head, uint32_t ctx) __attribute__((noreturn));
void resume_enter(uint32_t trampoline, uint32_t pbe_head, uint32_t ctx, uint32_t high_pbe_head) __attribute__((noreturn));
extern char trampoline_start[], trampoline_end[];

/* main.c */
extern struct boot_info boot_info;

#endif /* __ASSEMBLER__ */
#endif /* KERNEL_H */
