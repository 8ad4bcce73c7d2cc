/*
 * ATA PIO on the primary channel, master drive, LBA28, polling only (nIEN
 * set, the IRQ stays masked). At boot the kernel only looks for the swap disk
 * and reads its sector 0.
 */
#include "kernel.h"
#include "x86.h"

#include "ata_regs.h"

#define SPIN 1000000

static int ata_present;
static uint32_t ata_sectors;
static uint16_t sector_buf[SECTOR / 2];

/* Wait until BSY clears (and DRQ sets if want_drq); return 0, or -1 on error or timeout. */
static int ata_wait(int want_drq)
{
    int i;
    for (i = 0; i < SPIN; i++) {
        uint8_t st = inb(ATA_CMD);
        if (st == 0xFF)
            return -1;                      /* floating bus: no controller */
        if (st & ST_BSY)
            continue;
        if (st & (ST_ERR | ST_DF))
            return -1;
        if (!want_drq || (st & ST_DRQ))
            return 0;
    }
    return -1;
}

/* Select the master drive and program an LBA28 command for count (1-256) sectors at lba. */
static void ata_command(uint32_t lba, uint32_t count, uint8_t cmd)
{
    outb(ATA_DRIVE, 0xE0 | ((lba >> 24) & 0x0F));
    outb(ATA_COUNT, count & 0xFF);          /* 0 means 256 */
    outb(ATA_LBA0, lba & 0xFF);
    outb(ATA_LBA1, (lba >> 8) & 0xFF);
    outb(ATA_LBA2, (lba >> 16) & 0xFF);
    outb(ATA_CMD, cmd);
}

/* Read count sectors at lba into buf; return 0, or -1 on error. */
int ata_read(uint32_t lba, uint32_t count, void *buf)
{
    uint32_t i;

    if (!ata_present || count == 0 || count > 256 || lba >= (1u << 28))
        return -1;
    if (ata_wait(0) < 0)
        return -1;
    ata_command(lba, count, CMD_READ);
    for (i = 0; i < count; i++) {
        if (ata_wait(1) < 0)
            return -1;
        insw(ATA_DATA, (uint8_t *)buf + i * SECTOR, SECTOR / 2);
    }
    return 0;
}

/* Write count sectors from buf at lba and flush the drive cache; return 0, or -1 on error. */
int ata_write(uint32_t lba, uint32_t count, const void *buf)
{
    uint32_t i;

    if (!ata_present || count == 0 || count > 256 || lba >= (1u << 28))
        return -1;
    if (ata_wait(0) < 0)
        return -1;
    ata_command(lba, count, CMD_WRITE);
    for (i = 0; i < count; i++) {
        if (ata_wait(1) < 0)
            return -1;
        outsw(ATA_DATA, (const uint8_t *)buf + i * SECTOR, SECTOR / 2);
    }
    if (ata_wait(0) < 0)
        return -1;
    outb(ATA_CMD, CMD_FLUSH);
    return ata_wait(0);
}

/* Sectors of the disk (0: none). */
uint32_t ata_sector_count(void)
{
    return ata_present ? ata_sectors : 0;
}

/* Probe for the primary master (IDENTIFY); if present, read sector 0 and print its first bytes. */
void ata_init(void)
{
    int i;
    uint8_t *b = (uint8_t *)sector_buf;

    if (inb(ATA_CMD) == 0xFF) {
        kprintf("ata: no primary channel\n");
        return;
    }
    outb(ATA_CTRL, 0x02);                   /* nIEN: we poll */
    outb(ATA_DRIVE, 0xA0);
    outb(ATA_COUNT, 0);
    outb(ATA_LBA0, 0);
    outb(ATA_LBA1, 0);
    outb(ATA_LBA2, 0);
    outb(ATA_CMD, CMD_IDENTIFY);
    if (inb(ATA_CMD) == 0 || ata_wait(1) < 0) {
        kprintf("ata: no drive on primary master\n");
        return;
    }
    insw(ATA_DATA, sector_buf, SECTOR / 2);
    ata_sectors = sector_buf[60] | (uint32_t)sector_buf[61] << 16;
    ata_present = 1;
    if (ata_read(0, 1, sector_buf) < 0) {
        kprintf("ata: reading sector 0 failed\n");
        return;
    }
    kprintf("ata: swap disk, %u sectors; sector 0:", ata_sectors);
    for (i = 0; i < 16; i++)
        kprintf(" %02x", b[i]);
    kprintf("\n");
}
