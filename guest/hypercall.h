/*
 * Hypercalls: `out %eax, (%dx)` to PORT_HYPERCALL with the function number in
 * EAX and arguments in EBX, ECX, ESI, EDI. The harness handles the `out`
 * synchronously and may write results into EAX, EBX, ECX, ESI, EDI before the
 * instruction retires, and may read or write any guest memory: hence "memory".
 */
#ifndef HYPERCALL_H
#define HYPERCALL_H
#include "abi.h"

#define HC_STR2(x) #x
#define HC_STR(x) HC_STR2(x)

struct hc_regs {
    uint32_t eax, ebx, ecx, esi, edi;
};

/* Do hypercall fn; return every register the harness may have written. */
static inline struct hc_regs hypercall_regs(uint32_t fn, uint32_t ebx, uint32_t ecx, uint32_t esi, uint32_t edi)
{
    struct hc_regs r = { fn, ebx, ecx, esi, edi };
    __asm__ volatile("movw $" HC_STR(PORT_HYPERCALL) ", %%dx\n\t"
                     "outl %%eax, (%%dx)"
                     : "+a"(r.eax), "+b"(r.ebx), "+c"(r.ecx), "+S"(r.esi), "+D"(r.edi)
                     :
                     : "edx", "memory");
    return r;
}

/* Do hypercall fn; return EAX. */
static inline uint32_t hypercall(uint32_t fn, uint32_t ebx, uint32_t ecx, uint32_t esi, uint32_t edi)
{
    return hypercall_regs(fn, ebx, ecx, esi, edi).eax;
}

#endif /* HYPERCALL_H */
