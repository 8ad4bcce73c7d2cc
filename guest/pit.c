/* The 8254 timer, channel 0, at HZ ticks per second; drives preemption. */
#include "kernel.h"
#include "x86.h"

#define PIT_HZ 1193182
#define PIT_CH0 0x40
#define PIT_CMD 0x43

volatile uint32_t ticks;

/* Program channel 0 as a rate generator at HZ. Idempotent (also run on resume). */
void pit_init(void)
{
    uint32_t divisor = (PIT_HZ + HZ / 2) / HZ;
    outb(PIT_CMD, 0x34);        /* channel 0, lobyte/hibyte, mode 2 */
    outb(PIT_CH0, divisor & 0xFF);
    outb(PIT_CH0, divisor >> 8);
}
