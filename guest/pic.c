/*
 * The two 8259A interrupt controllers, remapped to vectors 0x20-0x2F. Only
 * IRQ0 (the PIT) and PM_REQUEST_IRQ (the harness's hibernation request, through
 * the cascade on IRQ2) are unmasked: the console, the disk and everything else
 * are polled.
 */
#include "kernel.h"
#include "x86.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define PIC_EOI 0x20
#define OCW3_READ_ISR 0x0B

/* Initialise both PICs (ICW1-4), vectors 0x20/0x28, mask all but IRQ0 and PM_REQUEST_IRQ. Idempotent (also run on resume). */
void pic_init(void)
{
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    outb(PIC1_CMD, 0x11);       /* ICW1: edge, cascade, ICW4 follows */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, 0x20);      /* ICW2: vector base */
    outb(PIC2_DATA, 0x28);
    outb(PIC1_DATA, 0x04);      /* ICW3: slave on IRQ2 */
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);      /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
#if PM_REQUEST_IRQ < 8
    outb(PIC1_DATA, (uint8_t)~(1u | 1u << PM_REQUEST_IRQ));
    outb(PIC2_DATA, 0xFF);
#else
    outb(PIC1_DATA, (uint8_t)~(1u | 1u << 2));              /* IRQ0 and the cascade */
    outb(PIC2_DATA, (uint8_t)~(1u << (PM_REQUEST_IRQ - 8)));
#endif
}

/* Acknowledge irq (0-15) at the PIC(s) that delivered it. */
void pic_eoi(int irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, PIC_EOI);
    outb(PIC1_CMD, PIC_EOI);
}

/* Return 1 if irq 7 or 15 is spurious (its ISR bit is clear), after the EOI a spurious IRQ15 still owes the master. */
int pic_spurious(int irq)
{
    if (irq == 7) {
        outb(PIC1_CMD, OCW3_READ_ISR);
        return !(inb(PIC1_CMD) & 0x80);
    }
    if (irq == 15) {
        outb(PIC2_CMD, OCW3_READ_ISR);
        if (!(inb(PIC2_CMD) & 0x80)) {
            outb(PIC1_CMD, PIC_EOI);    /* the master saw a real IRQ2 */
            return 1;
        }
    }
    return 0;
}
