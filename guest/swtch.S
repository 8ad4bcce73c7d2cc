/*
 * void swtch(struct task_struct *prev, struct task_struct *next);
 * Save the callee-saved registers on prev's stack and its ESP in prev->esp,
 * load next->esp and pop next's registers. Called with interrupts off.
 * A new task's stack is laid out by task_create() to "return" into task_start.
 */
#include "abi.h"

.text
.globl swtch
swtch:
    movl 4(%esp), %eax
    movl 8(%esp), %edx
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, OFF_TASK_STRUCT_ESP(%eax)
    movl OFF_TASK_STRUCT_ESP(%edx), %esp
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

/* Where a new task's first swtch() returns to: run task_entry() on its own stack. */
.globl task_start
task_start:
    call task_entry
1:  cli
    hlt
    jmp 1b

.section .note.GNU-stack, "", @progbits
