/*
 * The suspend module's entry and its exception entry points. The kernel jumps to
 * _smod_entry at the atomic point with EAX = &smod_params, ESP = the top of the
 * scratch stack, CR3 = the module's page tables, interrupts off; everything but the
 * module, its lists and its scratch is read-only.
 */
#include "smod.h"

.section .text.head, "ax"
.globl _smod_header
_smod_header:
    .long SMOD_MAGIC
    .long _smod_entry
    .long _smod_end

.text
.globl _smod_entry
_smod_entry:
    cld
    pushl %eax
    call smod_main                      /* never returns */
1:  cli
    hlt
    jmp 1b

/* Exceptions 0-31: the frame smod_exception reads is vector, error code, then the CPU's. */
.macro EXC n
smod_exc\n:
.if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
.else
    pushl $0
.endif
    pushl $\n
    jmp smod_exc_common
.endm

.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
EXC \n
.endr

smod_exc_common:
    pushal                              /* edi esi ebp esp ebx edx ecx eax */
    pushl %esp
    call smod_exception                 /* never returns */
2:  cli
    hlt
    jmp 2b

.section .rodata
.globl smod_exc_table
smod_exc_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long smod_exc\n
.endr
