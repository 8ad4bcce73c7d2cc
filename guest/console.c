/*
 * Console: COM1 (0x3F8) in polling mode, 115200 8N1, plus kprintf and panic.
 * Output is serialised with interrupts off so lines of different tasks do not
 * interleave mid-character.
 */
#include <stdarg.h>
#include "kernel.h"
#include "hypercall.h"
#include "x86.h"

#define COM1 0x3F8
#define LSR_THR_EMPTY 0x20

/* Program COM1: no interrupts, 115200 baud, 8N1, FIFOs on. Idempotent (also run on resume). */
void console_init(void)
{
    outb(COM1 + 1, 0x00);   /* IER: no interrupts, we poll */
    outb(COM1 + 3, 0x80);   /* LCR: DLAB */
    outb(COM1 + 0, 0x01);   /* divisor 1 = 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1, DLAB off */
    outb(COM1 + 2, 0xC7);   /* FIFO on, cleared, 14-byte threshold */
    outb(COM1 + 4, 0x03);   /* DTR | RTS */
}

/* Write one character, turning \n into \r\n. */
void console_putc(int c)
{
    int i;
    if (c == '\n')
        console_putc('\r');
    for (i = 0; i < 100000 && !(inb(COM1 + 5) & LSR_THR_EMPTY); i++)
        ;
    outb(COM1, (uint8_t)c);
}

/* Print x in base (10 or 16), at least width digits, padded with pad. */
static void printnum(uint32_t x, int base, int width, char pad)
{
    static const char digits[] = "0123456789abcdef";
    char buf[16];
    int i = 0;
    do {
        buf[i++] = digits[x % base];
        x /= base;
    } while (x != 0);
    while (i < width && i < (int)sizeof(buf))
        buf[i++] = pad;
    while (--i >= 0)
        console_putc(buf[i]);
}

/* Formatted print to the console: %d %u %x %s %c %p %%, with optional 0 and width (%08x). */
void kprintf(const char *fmt, ...)
{
    va_list ap;
    uint32_t flags = irq_save();
    const char *p;

    va_start(ap, fmt);
    for (p = fmt; *p; p++) {
        int width = 0;
        char pad = ' ';
        if (*p != '%') {
            console_putc(*p);
            continue;
        }
        p++;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (*p++ - '0');
        switch (*p) {
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                console_putc('-');
                printnum(-(uint32_t)v, 10, width, pad);
            } else {
                printnum(v, 10, width, pad);
            }
            break;
        }
        case 'u':
            printnum(va_arg(ap, uint32_t), 10, width, pad);
            break;
        case 'x':
            printnum(va_arg(ap, uint32_t), 16, width, pad);
            break;
        case 'p':
            console_putc('0');
            console_putc('x');
            printnum((uint32_t)va_arg(ap, void *), 16, 8, '0');
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL)
                s = "(null)";
            while (*s)
                console_putc(*s++);
            break;
        }
        case 'c':
            console_putc(va_arg(ap, int));
            break;
        case '%':
            console_putc('%');
            break;
        case 0:
            p--;
            break;
        default:
            console_putc('%');
            console_putc(*p);
            break;
        }
    }
    va_end(ap);
    irq_restore(flags);
}

/* Stop this CPU for good: interrupts off, hlt forever. */
void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Report msg to the harness (PANIC), print it, halt. Never returns. */
void panic(const char *msg)
{
    cli();
    hypercall(HC_PANIC, (uint32_t)msg, strlen(msg), 0, 0);
    kprintf("\npanic: %s (task %d)\n", msg, current ? (int)current->id : -1);
    halt_forever();
}
