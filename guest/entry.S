/*
 * Multiboot entry. v86 jumps here in flat 32-bit protected mode with
 * EAX = 0x2BADB002 and EBX = &multiboot_info (0x7C00), interrupts off,
 * paging off. We load our own GDT (null, code 0x08, data 0x10, TSS 0x18),
 * switch to the boot stack and call main(magic, mbi).
 */
#include "abi.h"
#include "kernel.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003     /* page-align modules + memory info; v86 accepts nothing else */

.section .multiboot, "a"
.align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

.text
.globl _start
_start:
    cli
    cld
    movl %eax, %esi             /* keep magic and mbi across the bss clear */
    movl %ebx, %edx

    /* Zero .bss (v86 loads filesz only; a fresh machine is zero, but say so). */
    movl $bss_start, %edi
    movl $kernel_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    lgdt gdt_desc
    ljmp $SEG_KCODE, $1f
1:  movw $SEG_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $boot_stack_top, %esp
    xorl %ebp, %ebp

    pushl %edx                  /* mbi */
    pushl %esi                  /* magic */
    call main
2:  cli
    hlt
    jmp 2b

.data
.align 8
.globl gdt
gdt:
    .quad 0                     /* 0x00 null */
    .quad 0x00CF9A000000FFFF    /* 0x08 code: base 0, limit 4 GiB, ring 0, r-x */
    .quad 0x00CF92000000FFFF    /* 0x10 data: base 0, limit 4 GiB, ring 0, rw- */
    .quad 0                     /* 0x18 TSS: filled by tss_init() */
gdt_end:

.align 4
    .word 0                     /* pad so the base below is 4-aligned */
.globl gdt_desc
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

.bss
.align 16
.globl boot_stack
boot_stack:
    .space BOOT_STACK_BYTES
boot_stack_top:

.section .note.GNU-stack, "", @progbits
