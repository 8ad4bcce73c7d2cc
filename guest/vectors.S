/*
 * Interrupt entry stubs for vectors 0-47 (32 exceptions, 16 IRQs) and the
 * table of their addresses used by idt_init(). Every stub leaves the same
 * frame (struct trapframe in trap.c) and goes through alltraps into trap().
 * Everything runs in ring 0, so segment registers never change and are not saved.
 *
 * Vector 14 (#PF) is special: it first forwards (error code, EIP) to the
 * harness through PORT_PAGE_FAULT, touching nothing but the current stack,
 * and irets if the harness answers PF_HANDLED. The harness reads CR2 from the
 * CPU: this is an interrupt gate and nothing before the `out` can fault, so CR2
 * still holds the faulting address. The fast path has no pushal/popal and no
 * `mov %cr2`: in v86 each of those ends a compiled JIT block, and every block
 * boundary costs a trip through v86's main loop on every fault (docs/V86.md).
 */
#include "abi.h"

.macro NOERR n
vector\n:
    pushl $0
    pushl $\n
    jmp alltraps
.endm

.macro ERR n
vector\n:
    pushl $\n
    jmp alltraps
.endm

.text
.irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    NOERR \n
.endr
.irp n, 8,10,11,12,13,17,21,29,30
    ERR \n
.endr
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    NOERR \n
.endr

/* #PF: frame is [err, eip, cs, eflags]. */
vector14:
    pushl %eax
    pushl %edx
    pushl %ebx
    movl 12(%esp), %eax             /* error code */
    movl 16(%esp), %ebx             /* faulting EIP */
    movl $PORT_PAGE_FAULT, %edx
    outl %eax, (%dx)
    cmpl $PF_HANDLED, %eax
    popl %ebx                       /* pops leave the flags alone */
    popl %edx
    popl %eax
    jne 1f
    addl $4, %esp                   /* drop the error code */
    iret                            /* retry the access */
1:  pushl $14
    jmp alltraps

/* Common path: build struct trapframe, call trap(tf), unwind, iret. */
alltraps:
    pushal
    pushl %esp
    call trap
    addl $4, %esp
    popal
    addl $8, %esp                   /* vector and error code */
    iret

.section .rodata
.align 4
.globl vectors
vectors:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .long vector\n
.endr

.section .note.GNU-stack, "", @progbits
