/*
 * The ATA registers of the primary channel, as v86's IDE controller has them: shared
 * by the kernel's driver (ata.c) and the suspend module's own (smod/module.c), which
 * share nothing else.
 */
#ifndef ATA_REGS_H
#define ATA_REGS_H

#define ATA_DATA 0x1F0
#define ATA_COUNT 0x1F2
#define ATA_LBA0 0x1F3
#define ATA_LBA1 0x1F4
#define ATA_LBA2 0x1F5
#define ATA_DRIVE 0x1F6
#define ATA_CMD 0x1F7           /* status on read */
#define ATA_CTRL 0x3F6

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_BSY 0x80

#define CMD_READ 0x20
#define CMD_WRITE 0x30
#define CMD_FLUSH 0xE7
#define CMD_IDENTIFY 0xEC

#define SECTOR 512

#endif
