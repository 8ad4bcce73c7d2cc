/*
 * The architecture part of hibernation: saving the CPU context at the atomic
 * point, and the restore trampoline that copies the image back and reloads it.
 *
 * int swsusp_arch_suspend(void)
 *   Called by the pm task with interrupts off. Saves EBX ESI EDI EBP, ESP,
 *   the resume EIP, EFLAGS, CR0 CR2 CR3 CR4, GDTR IDTR, the segment
 *   selectors and TR into saved_context, sets its magic, then does hypercall
 *   ATOMIC (the atomic point) and returns 0. Nothing between the saves and the
 *   hypercall changes a saved register or a flag (only EAX and EDX carry the
 *   call; pushfl is the last thing before it), so the harness's oracle records
 *   the context from the CPU itself, not from saved_context. When an image is
 *   restored, the trampoline jumps to resume_point with ESP = the saved ESP
 *   (pointing at our return address): hypercall RESUME_POINT there lets the
 *   oracle compare the CPU with the atomic point before anything runs, and we
 *   return 1 to the same caller, as if the call had just finished.
 *
 * The trampoline (trampoline_start .. trampoline_end)
 *   Entered by the boot kernel with EAX = PBE list head (physical, 0 = empty),
 *   EBX = &saved_context, EDX = its own address, interrupts off. The harness
 *   runs a copy of these bytes in a safe page, so the code is position
 *   independent: no absolute addresses, no call, no stack until the saved ESP
 *   is loaded. It
 *     1. reads the word at TRAMPOLINE_PD_SLOT of its page: 0 → turns paging
 *        off (lowmem is identity mapped, so EIP stays valid); otherwise a page
 *        directory in a safe page that maps lowmem 1:1 with 4 MiB pages →
 *        sets CR4.PSE and loads it into CR3, and copies with paging on, as
 *        Linux's 32-bit restore does (frames above lowmem are out of its reach:
 *        the boot kernel copied those before, resume_enter),
 *     2. copies every PBE's page (4096 bytes, rep movsl) to its orig_address,
 *     3. hypercall RESTORE_DONE: memory now equals the image,
 *     4. loads ESP and writes only below it from here on: the lret frame,
 *        EFLAGS, and the 6-byte GDTR/IDTR pseudo-descriptors (and the busy bit
 *        of the TSS descriptor, cleared for ltr, which sets it again),
 *     5. lgdt/lidt, data segments and SS, TR, CR2 CR3 CR4, then CR0 (paging
 *        back on),
 *     6. restores EBP ESI EDI EBX and EFLAGS, EAX = 1, lret to resume_point.
 *   saved_context itself is read only after the copy (the image's copy is the
 *   one that counts) and never written.
 */
#include "abi.h"
#include "kernel.h"
#include "smod/smod.h"

#define CR0_PG 0x80000000
#define CR4_PSE_BIT 0x10
#define TSS_BUSY 0x02                   /* in the type field, byte 5 of a descriptor */
#define SC(field) saved_context + OFF_SAVED_CONTEXT_##field

.bss
.align 64
.globl saved_context
saved_context:
    .space SIZEOF_SAVED_CONTEXT
dtr_scratch:                            /* sgdt/sidt: limit at +2, base at +4 */
    .space 8

.text
.macro SAVE_CONTEXT
    movl %ebx, SC(EBX)
    movl %esi, SC(ESI)
    movl %edi, SC(EDI)
    movl %ebp, SC(EBP)
    movl %esp, SC(ESP)                  /* points at the return address */
    movl $resume_point, SC(EIP)
    movl %cr0, %eax
    movl %eax, SC(CR0)
    movl %cr2, %eax
    movl %eax, SC(CR2)
    movl %cr3, %eax
    movl %eax, SC(CR3)
    movl %cr4, %eax
    movl %eax, SC(CR4)
    sgdt dtr_scratch + 2
    movzwl dtr_scratch + 2, %eax
    movl %eax, SC(GDTR_LIMIT)
    movl dtr_scratch + 4, %eax
    movl %eax, SC(GDTR_BASE)
    sidt dtr_scratch + 2
    movzwl dtr_scratch + 2, %eax
    movl %eax, SC(IDTR_LIMIT)
    movl dtr_scratch + 4, %eax
    movl %eax, SC(IDTR_BASE)
    movw %cs, %ax                       /* mov and movzwl leave the flags alone */
    movzwl %ax, %eax
    movl %eax, SC(CS)
    movw %ds, %ax
    movzwl %ax, %eax
    movl %eax, SC(DS)
    movw %es, %ax
    movzwl %ax, %eax
    movl %eax, SC(ES)
    movw %fs, %ax
    movzwl %ax, %eax
    movl %eax, SC(FS)
    movw %gs, %ax
    movzwl %ax, %eax
    movl %eax, SC(GS)
    movw %ss, %ax
    movzwl %ax, %eax
    movl %eax, SC(SS)
    str %ax
    movzwl %ax, %eax
    movl %eax, SC(TR)
    movl $CONTEXT_MAGIC, SC(MAGIC)
    pushfl
    popl SC(EFLAGS)                     /* no instruction below changes a flag before the hypercall */

.endm

.globl swsusp_arch_suspend
swsusp_arch_suspend:
    SAVE_CONTEXT
    movl $HC_ATOMIC, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)                    /* the atomic point */
    xorl %eax, %eax                     /* suspend path: 0 */
    ret

/*
 * int swsusp_arch_suspend_module(struct smod_params *p, uint32_t cr3)
 * The same context and atomic point, for the suspend module: after the hypercall it
 * only reads (its arguments, p's stack top and entry) and loads registers: CR3 = the
 * module's page tables, ESP = its stack, EAX = p, and jumps into it. Nothing saved is
 * written after the atomic point. The resume path returns 1 through resume_point.
 */
.globl swsusp_arch_suspend_module
swsusp_arch_suspend_module:
    SAVE_CONTEXT
    movl $HC_ATOMIC, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)                    /* the atomic point */
    movl 4(%esp), %eax
    movl 8(%esp), %ecx
    movl %ecx, %cr3                     /* the module's page tables: this code is mapped there too */
    movl SMOD_PARAMS_STACK_TOP(%eax), %esp
    jmp *SMOD_PARAMS_ENTRY(%eax)

/* Where the module comes back, EAX = the kernel's CR3: power off (nothing is written). */
.globl smod_return
smod_return:
    movl %eax, %cr3
    movl $HC_POWER_OFF, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)
1:  cli
    hlt
    jmp 1b

resume_point:                           /* resume path: every saved register is back */
    movl $HC_RESUME_POINT, %eax
    movw $PORT_HYPERCALL, %dx
    outl %eax, (%dx)                    /* control is back: the oracle compares the CPU */
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
    movl TRAMPOLINE_PD_SLOT(%edx), %ecx
    testl %ecx, %ecx
    jnz 5f
    movl %cr0, %ecx
    andl $~CR0_PG, %ecx
    movl %ecx, %cr0                     /* paging off: EIP is identity mapped */
    jmp 1f
5:  movl %cr4, %esi
    orl $CR4_PSE_BIT, %esi
    movl %esi, %cr4
    movl %ecx, %cr3                     /* the resume page directory: lowmem 1:1, EIP stays valid */
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

    /* From here on memory is written only below the saved ESP (and in the TSS descriptor, step 5). */
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
    movl OFF_SAVED_CONTEXT_TR(%ebx), %ecx   /* ltr faults on a busy TSS: clear the bit first */
    movl %ecx, %edx
    andl $0xfff8, %edx
    addl OFF_SAVED_CONTEXT_GDTR_BASE(%ebx), %edx
    andb $~TSS_BUSY, 5(%edx)
    ltr %cx
    movl OFF_SAVED_CONTEXT_CR2(%ebx), %ecx
    movl %ecx, %cr2
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
