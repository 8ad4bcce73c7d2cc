/*
 * The task-state segment. The GDT itself is static in entry.S; slot 3 (0x18)
 * is the TSS descriptor, filled here. Everything runs in ring 0, so the TSS is
 * never consulted; it is loaded with ltr so the machine state is complete.
 */
#include "kernel.h"
#include "x86.h"

#define TSS_BYTES 104
#define TSS_SS0 2               /* word index of ss0 */
#define TSS_IOMAP 25            /* word index of the I/O map base (high half) */
#define STS_T32A 0x9            /* available 32-bit TSS */

uint32_t tss[26] __attribute__((aligned(16)));

/* Build the TSS and its descriptor in gdt[3], then ltr. */
void tss_init(void)
{
    uint32_t base = (uint32_t)tss;
    uint64_t d;

    memset(tss, 0, sizeof(tss));
    tss[TSS_SS0] = SEG_KDATA;
    tss[TSS_IOMAP] = (uint32_t)TSS_BYTES << 16;   /* no I/O bitmap */
    d = (TSS_BYTES - 1) & 0xFFFF;
    d |= (uint64_t)(base & 0xFFFFFF) << 16;
    d |= (uint64_t)(0x80 | STS_T32A) << 40;       /* present, DPL 0, system */
    d |= (uint64_t)(base >> 24) << 56;
    gdt[SEG_TSS / 8] = d;
    ltr(SEG_TSS);
}
