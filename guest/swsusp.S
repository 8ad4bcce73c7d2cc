/*
 * The architecture part of hibernation: saving the CPU context at the atomic
 * point, and the restore trampoline that copies the image back and reloads it.
 *
 * int swsusp_arch_suspend(void)
 *   Called by the pm task with interrupts off. Saves EBX ESI EDI EBP, ESP,
 *   the resume EIP, EFLAGS, CR0 CR3 CR4, GDTR IDTR and the segment selectors
 *   into saved_context, sets its magic, then does hypercall ATOMIC (the atomic
 *   point: the harness records memory and context) and returns 0. When an
 *   image is restored, the trampoline jumps to resume_point with ESP = the
 *   saved ESP (pointing at our return address), and we return 1 to the same
 *   caller, as if the call had just finished.
 *
 * The trampoline (trampoline_start .. trampoline_end)
 *   Entered by the boot kernel with EAX = PBE list head (physical, 0 = empty),
 *   EBX = &saved_context, interrupts off. The harness runs a copy of these
 *   bytes in a safe page, so the code is position independent: no absolute
 *   addresses, no call, no stack until the saved ESP is loaded. It
 *     1. turns paging off (everything is identity mapped, so EIP stays valid),
 *     2. copies every PBE's page (4096 bytes, rep movsl) to its orig_address,
 *     3. hypercall RESTORE_DONE: memory now equals the image,
 *     4. loads ESP and writes only below it from here on: the lret frame,
 *        EFLAGS, and the 6-byte GDTR/IDTR pseudo-descriptors,
 *     5. lgdt/lidt, data segments and SS, CR3 CR4, then CR0 (paging back on),
 *     6. restores EBP ESI EDI EBX and EFLAGS, EAX = 1, lret to resume_point.
 *   saved_context itself is read only after the copy (the image's copy is the
 *   one that counts) and never written.
 */
#include "abi.h"
#include "kernel.h"

#define CR0_PG 0x80000000

.bss
.align 64
.globl saved_context
saved_context:
    .space SIZEOF_SAVED_CONTEXT

.text
.globl swsusp_arch_suspend
swsusp_arch_suspend:
    pushl %ebx                          /* the hypercall needs EBX; popped below */
    movl $saved_context, %eax
    movl (%esp), %ecx                   /* caller's EBX */
    movl %ecx, OFF_SAVED_CONTEXT_EBX(%eax)
    movl %esi, OFF_SAVED_CONTEXT_ESI(%eax)
    movl %edi, OFF_SAVED_CONTEXT_EDI(%eax)
    movl %ebp, OFF_SAVED_CONTEXT_EBP(%eax)
    leal 4(%esp), %ecx                  /* ESP at our entry: points at the return address */
    movl %ecx, OFF_SAVED_CONTEXT_ESP(%eax)
    movl $resume_point, OFF_SAVED_CONTEXT_EIP(%eax)
    pushfl
    popl OFF_SAVED_CONTEXT_EFLAGS(%eax)
    movl %cr0, %ecx
    movl %ecx, OFF_SAVED_CONTEXT_CR0(%eax)
    movl %cr3, %ecx
    movl %ecx, OFF_SAVED_CONTEXT_CR3(%eax)
    movl %cr4, %ecx
    movl %ecx, OFF_SAVED_CONTEXT_CR4(%eax)
    subl $8, %esp
    sgdt 2(%esp)                        /* limit at 2(%esp), base at 4(%esp) */
    movzwl 2(%esp), %ecx
    movl %ecx, OFF_SAVED_CONTEXT_GDTR_LIMIT(%eax)
    movl 4(%esp), %ecx
    movl %ecx, OFF_SAVED_CONTEXT_GDTR_BASE(%eax)
    sidt 2(%esp)
    movzwl 2(%esp), %ecx
    movl %ecx, OFF_SAVED_CONTEXT_IDTR_LIMIT(%eax)
    movl 4(%esp), %ecx
    movl %ecx, OFF_SAVED_CONTEXT_IDTR_BASE(%eax)
    addl $8, %esp
    xorl %ecx, %ecx
    movw %cs, %cx
    movl %ecx, OFF_SAVED_CONTEXT_CS(%eax)
    movw %ds, %cx
    movl %ecx, OFF_SAVED_CONTEXT_DS(%eax)
    movw %es, %cx
    movl %ecx, OFF_SAVED_CONTEXT_ES(%eax)
    movw %fs, %cx
    movl %ecx, OFF_SAVED_CONTEXT_FS(%eax)
    movw %gs, %cx
    movl %ecx, OFF_SAVED_CONTEXT_GS(%eax)
    movw %ss, %cx
    movl %ecx, OFF_SAVED_CONTEXT_SS(%eax)
    movl $CONTEXT_MAGIC, OFF_SAVED_CONTEXT_MAGIC(%eax)

    movl %eax, %ebx                     /* EBX = &saved_context */
    movl $HC_ATOMIC, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)                    /* the atomic point */
    popl %ebx
    xorl %eax, %eax                     /* suspend path: 0 */
    ret

resume_point:                           /* resume path: ESP, EBX ESI EDI EBP, EFLAGS restored */
    movl $1, %eax
    ret

/*
 * void resume_jump(uint32_t trampoline, uint32_t pbe_head, uint32_t ctx)
 * Boot kernel, after RESUME_CHECK said yes: enter the trampoline copy. Never returns.
 */
.globl resume_jump
resume_jump:
    cli
    movl 4(%esp), %edx
    movl 8(%esp), %eax
    movl 12(%esp), %ebx
    jmp *%edx

/* ---- Position-independent from here to trampoline_end. ---- */
.align 16
.globl trampoline_start
trampoline_start:
    cli
    cld
    movl %cr0, %ecx
    andl $~CR0_PG, %ecx
    movl %ecx, %cr0                     /* paging off: EIP is identity mapped */
    jmp 1f
1:
    testl %eax, %eax
    jz 3f
2:  movl OFF_PBE_ADDRESS(%eax), %esi
    movl OFF_PBE_ORIG_ADDRESS(%eax), %edi
    movl $(PAGE_SIZE / 4), %ecx
    rep movsl
    movl OFF_PBE_NEXT(%eax), %eax
    testl %eax, %eax
    jnz 2b
3:
    movl $HC_RESTORE_DONE, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)

    /* From here on memory is written only below the saved ESP. */
    movl OFF_SAVED_CONTEXT_SS(%ebx), %ecx
    movw %cx, %ss
    movl OFF_SAVED_CONTEXT_ESP(%ebx), %esp
    pushl OFF_SAVED_CONTEXT_CS(%ebx)        /* lret frame: CS, then EIP */
    pushl OFF_SAVED_CONTEXT_EIP(%ebx)
    pushl OFF_SAVED_CONTEXT_EFLAGS(%ebx)
    subl $8, %esp                       /* pseudo-descriptor: limit at 2(%esp), base at 4(%esp) */
    movl OFF_SAVED_CONTEXT_GDTR_LIMIT(%ebx), %ecx
    movw %cx, 2(%esp)
    movl OFF_SAVED_CONTEXT_GDTR_BASE(%ebx), %ecx
    movl %ecx, 4(%esp)
    lgdt 2(%esp)
    movl OFF_SAVED_CONTEXT_IDTR_LIMIT(%ebx), %ecx
    movw %cx, 2(%esp)
    movl OFF_SAVED_CONTEXT_IDTR_BASE(%ebx), %ecx
    movl %ecx, 4(%esp)
    lidt 2(%esp)
    addl $8, %esp
    movl OFF_SAVED_CONTEXT_DS(%ebx), %ecx
    movw %cx, %ds
    movl OFF_SAVED_CONTEXT_ES(%ebx), %ecx
    movw %cx, %es
    movl OFF_SAVED_CONTEXT_FS(%ebx), %ecx
    movw %cx, %fs
    movl OFF_SAVED_CONTEXT_GS(%ebx), %ecx
    movw %cx, %gs
    movl OFF_SAVED_CONTEXT_SS(%ebx), %ecx
    movw %cx, %ss
    movl OFF_SAVED_CONTEXT_CR3(%ebx), %ecx
    movl %ecx, %cr3
    movl OFF_SAVED_CONTEXT_CR4(%ebx), %ecx
    movl %ecx, %cr4
    movl OFF_SAVED_CONTEXT_CR0(%ebx), %ecx
    movl %ecx, %cr0                     /* paging back on, with the image's page tables */
    jmp 4f
4:
    movl OFF_SAVED_CONTEXT_EBP(%ebx), %ebp
    movl OFF_SAVED_CONTEXT_ESI(%ebx), %esi
    movl OFF_SAVED_CONTEXT_EDI(%ebx), %edi
    movl OFF_SAVED_CONTEXT_EBX(%ebx), %ebx
    movl $1, %eax
    popfl
    lret
.globl trampoline_end
trampoline_end:

.section .note.GNU-stack, "", @progbits
