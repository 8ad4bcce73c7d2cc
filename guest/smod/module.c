/*
 * The suspend module (Maxim Levitsky, LKML, June 2010): "a kind of self-contained very
 * small operation system that will know to do just one thing, write the memory to disk".
 *
 * It runs alone, interrupts off, on page tables the kernel built for it: itself, its
 * lists and its scratch space read-write, all other memory read-only ("even if the
 * module wanted to it won't be able to change system memory"). It calls nothing of the
 * kernel's. It writes hiberlab's image format (image_format.h, generated from the same
 * tables as the harness's reader): the pages of the memory areas, each with its CRC32,
 * the metadata (PFNs, CRCs), the header, and the signature block last, through its own
 * polling ATA driver onto the disk sectors the kernel listed, printing its progress on
 * the serial console every 10 %. Then it returns to the kernel, which powers off.
 *
 * A fault (a stray write into read-only memory) goes to its own handlers: they report
 * the exception (hypercall EXCEPTION: vector, EIP, CR2) and halt.
 */
#include "smod.h"
#include "../abi.h"
#include "../image_format.h"
#include "../hypercall.h"
#include "../x86.h"

#include "../ata_regs.h"
#include "lz4.h"

#define COM1 0x3F8

void smod_main(struct smod_params *p) __attribute__((noreturn));
void smod_exception(uint32_t *frame) __attribute__((noreturn));
extern const uint32_t smod_exc_table[32];

static struct smod_params *P;
static uint32_t crc_table[256];
static uint64_t idt[32];

/* gcc may call these for loops and copies, even freestanding: the module has its own. */
void *memset(void *d, int c, uint32_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, uint32_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

/* ---- the console: COM1, polled ---- */

static void putc_serial(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
    while (*s)
        putc_serial(*s++);
}

static void putu_serial(uint32_t v)
{
    char b[11];
    int i = 10;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_serial(b + i);
}

/* Stops the machine with a message the harness reads (PANIC); the text goes to scratch, which is mapped where it lies. */
static void fail(const char *why) __attribute__((noreturn));
static void fail(const char *why)
{
    char *msg = (char *)(P->scratch + P->scratch_bytes - SMOD_STACK_BYTES - 2 * SECTOR);
    uint32_t n = 0;
    const char *prefix = "suspend module: ";
    while (*prefix)
        msg[n++] = *prefix++;
    while (*why && n < 2 * SECTOR - 1)
        msg[n++] = *why++;
    msg[n] = 0;
    hypercall(HC_PANIC, (uint32_t)msg, n, 0, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- CRC-32 (zlib's), table-driven ---- */

static void crc_init(void)
{
    uint32_t i, k, c;
    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32(uint32_t crc, const uint8_t *d, uint32_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *d++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- ATA PIO, primary master, LBA28, polling (nIEN is set: no interrupts) ---- */

static void ata_wait(int want_drq)
{
    uint32_t i;
    for (i = 0; i < 10000000u; i++) {
        uint8_t st = inb(ATA_CMD);
        if (st & ST_BSY)
            continue;
        if (st & (ST_ERR | ST_DF))
            fail("the disk reported an error");
        if (!want_drq || (st & ST_DRQ))
            return;
    }
    fail("the disk did not answer");
}

static void ata_command(uint32_t lba, uint32_t count, uint8_t cmd)
{
    ata_wait(0);
    outb(ATA_DRIVE, 0xE0 | ((lba >> 24) & 0x0F));
    outb(ATA_COUNT, count & 0xFF);
    outb(ATA_LBA0, lba & 0xFF);
    outb(ATA_LBA1, (lba >> 8) & 0xFF);
    outb(ATA_LBA2, (lba >> 16) & 0xFF);
    outb(ATA_CMD, cmd);
}

static void ata_write(uint32_t lba, uint32_t count, const void *buf)
{
    uint32_t i;
    ata_command(lba, count, CMD_WRITE);
    for (i = 0; i < count; i++) {
        ata_wait(1);
        outsw(ATA_DATA, (const uint8_t *)buf + i * SECTOR, SECTOR / 2);
    }
    ata_wait(0);
}

static void ata_read(uint32_t lba, uint32_t count, void *buf)
{
    uint32_t i;
    ata_command(lba, count, CMD_READ);
    for (i = 0; i < count; i++) {
        ata_wait(1);
        insw(ATA_DATA, (uint8_t *)buf + i * SECTOR, SECTOR / 2);
    }
}

static void ata_flush(void)
{
    ata_command(0, 0, CMD_FLUSH);
    ata_wait(0);
}

/* Writes `sectors` sectors from buf at logical sector s of the image, through the sector list. */
static void write_logical(uint32_t s, const void *buf, uint32_t sectors)
{
    const struct smod_extent *e = (const struct smod_extent *)P->extents;
    const uint8_t *b = buf;
    uint32_t k = 0, base = 0;

    while (sectors) {
        while (k < P->extent_count && s >= base + e[k].sectors) {
            base += e[k].sectors;
            k++;
        }
        if (k == P->extent_count)
            fail("the image runs past its sector list");
        {
            uint32_t run = base + e[k].sectors - s;
            if (run > sectors)
                run = sectors;
            if (run > 256)
                run = 256;
            ata_write(e[k].first_sector + (s - base), run, b);
            s += run;
            b += run * SECTOR;
            sectors -= run;
        }
    }
}

/* The packed writes of a compressed image: stored pages gather in `stage`, 64 KiB at a time go out. */
static uint8_t *stage;
static uint32_t stage_fill, stage_sector;

static void stage_put(const uint8_t *b, uint32_t len)
{
    memcpy(stage + stage_fill, b, len);
    stage_fill += len;
    if (stage_fill >= SMOD_STAGE_BYTES) {
        write_logical(stage_sector, stage, SMOD_STAGE_BYTES / SECTOR);
        stage_sector += SMOD_STAGE_BYTES / SECTOR;
        stage_fill -= SMOD_STAGE_BYTES;
        memcpy(stage, stage + SMOD_STAGE_BYTES, stage_fill);
    }
}

static void stage_flush(void)
{
    uint32_t sectors = (stage_fill + SECTOR - 1) / SECTOR;
    memset(stage + stage_fill, 0, sectors * SECTOR - stage_fill);
    if (sectors)
        write_logical(stage_sector, stage, sectors);
}

/* ---- its own exceptions ---- */

static void idt_init(void)
{
    uint32_t i;
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) d;
    for (i = 0; i < 32; i++) {
        uint32_t h = smod_exc_table[i];
        idt[i] = (uint64_t)(h & 0xFFFF) | ((uint64_t)0x08 << 16) | ((uint64_t)0x8E00 << 32) | ((uint64_t)(h >> 16) << 48);
    }
    d.limit = sizeof(idt) - 1;
    d.base = (uint32_t)idt;
    __asm__ volatile("lidt %0" : : "m"(d));
}

/* frame: edi esi ebp esp ebx edx ecx eax (pushal), vector, error code, eip, cs, eflags. */
void smod_exception(uint32_t *frame)
{
    uint32_t *f = (uint32_t *)(P->scratch + P->scratch_bytes - SMOD_STACK_BYTES - 3 * SECTOR);
    f[OFF_EXCEPTION_FRAME_VECTOR / 4] = frame[8];
    f[OFF_EXCEPTION_FRAME_ERROR_CODE / 4] = frame[9];
    f[OFF_EXCEPTION_FRAME_EIP / 4] = frame[10];
    f[OFF_EXCEPTION_FRAME_CS / 4] = frame[11];
    f[OFF_EXCEPTION_FRAME_EFLAGS / 4] = frame[12];
    f[OFF_EXCEPTION_FRAME_CR2 / 4] = rcr2();
    f[OFF_EXCEPTION_FRAME_EAX / 4] = frame[7];
    f[OFF_EXCEPTION_FRAME_EBX / 4] = frame[4];
    f[OFF_EXCEPTION_FRAME_ECX / 4] = frame[6];
    f[OFF_EXCEPTION_FRAME_EDX / 4] = frame[5];
    f[OFF_EXCEPTION_FRAME_ESI / 4] = frame[1];
    f[OFF_EXCEPTION_FRAME_EDI / 4] = frame[0];
    f[OFF_EXCEPTION_FRAME_EBP / 4] = frame[2];
    f[OFF_EXCEPTION_FRAME_ESP / 4] = (uint32_t)(frame + 13);
    f[OFF_EXCEPTION_FRAME_TASK_ID / 4] = 0xFFFFFFFFu;
    puts_serial("suspend module: exception ");
    putu_serial(frame[8]);
    puts_serial("\n");
    hypercall(HC_EXCEPTION, (uint32_t)f, 0, 0, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- the image ---- */

static void put32(uint8_t *b, uint32_t off, uint32_t v)
{
    b[off] = (uint8_t)v;
    b[off + 1] = (uint8_t)(v >> 8);
    b[off + 2] = (uint8_t)(v >> 16);
    b[off + 3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *b, uint32_t off)
{
    return b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
}

static void put64(uint8_t *b, uint32_t off, uint32_t v)
{
    put32(b, off, v);
    put32(b, off + 4, 0);
}

static void put_text(uint8_t *b, uint32_t off, const char *s, uint32_t max)
{
    uint32_t i;
    for (i = 0; i < max && s[i]; i++)
        b[off + i] = (uint8_t)s[i];
}

void smod_main(struct smod_params *p)
{
    const struct smod_area *a;
    uint32_t n, meta_bytes, meta_pages, data_sector, i = 0, k, tenth = 1, meta_crc, header_crc, stored = 0;
    uint32_t *pfns, *crcs, *sizes;
    uint8_t *hdr, *sec, *out = 0;
    uint16_t *table = 0;
    int compress;

    P = p;
    idt_init();
    crc_init();
    if (p->magic != SMOD_MAGIC)
        fail("bad parameters");
    n = p->page_count;
    compress = (p->flags & SMOD_COMPRESS) != 0;
    meta_bytes = n * (compress ? IMG_METADATA_BYTES_PER_COMPRESSED_PAGE : IMG_METADATA_BYTES_PER_PAGE);
    meta_pages = (meta_bytes + IMG_PAGE_SIZE - 1) / IMG_PAGE_SIZE;
    pfns = (uint32_t *)p->scratch;
    crcs = pfns + n;
    sizes = crcs + n;
    hdr = (uint8_t *)p->scratch + meta_pages * IMG_PAGE_SIZE;
    sec = hdr + IMG_PAGE_SIZE;
    data_sector = (IMG_METADATA_OFFSET + meta_pages * IMG_PAGE_SIZE) / SECTOR;
    if (compress) {
        table = (uint16_t *)(sec + IMG_PAGE_SIZE);
        out = (uint8_t *)table + 2 * IMG_PAGE_SIZE;
        stage = out + 2 * IMG_PAGE_SIZE;
        stage_fill = 0;
        stage_sector = data_sector;
    }
    puts_serial("suspend module: writing ");
    putu_serial(n);
    puts_serial(" pages\n");

    /* 1. The pages, straight from their frames (read-only here), each with its CRC. */
    for (a = (const struct smod_area *)p->areas; a < (const struct smod_area *)p->areas + p->area_count; a++) {
        for (k = 0; k < a->count; k++, i++) {
            const uint8_t *page = (const uint8_t *)((a->first_pfn + k) * IMG_PAGE_SIZE);
            pfns[i] = a->first_pfn + k;
            crcs[i] = crc32(0, page, IMG_PAGE_SIZE);
            if (compress) {
                /* 6a. Compressed into scratch, and packed: the page itself where LZ4 does not make it smaller. */
                uint32_t size = lz4_page(page, out, table);
                if (size)
                    stage_put(out, size);
                else
                    stage_put(page, size = IMG_PAGE_SIZE);
                sizes[i] = size;
                stored += size;
            } else {
                write_logical(data_sector + i * (IMG_PAGE_SIZE / SECTOR), page, IMG_PAGE_SIZE / SECTOR);
            }
            if ((p->flags & SMOD_STRAY_WRITE) && i == n / 2)
                *(volatile uint32_t *)p->stray_address = 0x0BAD0BADu;   /* read-only here: it faults */
            while (tenth <= 10 && (i + 1) * 10 >= tenth * n) {
                puts_serial("suspend module: ");
                putu_serial(tenth * 10);
                puts_serial("%\n");
                tenth++;
            }
        }
    }
    if (i != n)
        fail("the memory areas do not add up to the page count");
    if (compress)
        stage_flush();

    /* 2. The metadata: the PFNs, then the CRCs (then the stored sizes), zero to the page end. */
    memset((uint8_t *)p->scratch + meta_bytes, 0, meta_pages * IMG_PAGE_SIZE - meta_bytes);
    meta_crc = crc32(0, (const uint8_t *)p->scratch, meta_bytes);
    write_logical(IMG_METADATA_OFFSET / SECTOR, pfns, meta_pages * (IMG_PAGE_SIZE / SECTOR));

    /* 3. The header. */
    memset(hdr, 0, IMG_PAGE_SIZE);
    put_text(hdr, IMG_HDR_MAGIC, IMG_MAGIC, IMG_HDR_MAGIC_SIZE);
    put32(hdr, IMG_HDR_VERSION, IMG_FORMAT_VERSION);
    put32(hdr, IMG_HDR_HEADER_SIZE, IMG_HDR_BYTES);
    put32(hdr, IMG_HDR_PAGE_SIZE, IMG_PAGE_SIZE);
    put32(hdr, IMG_HDR_FRAME_COUNT, p->frame_count);
    put32(hdr, IMG_HDR_PAGE_COUNT, n);
    put32(hdr, IMG_HDR_CONTEXT_ADDRESS, p->context_address);
    memcpy(hdr + IMG_HDR_BUILD_ID, p->build_id, IMG_HDR_BUILD_ID_SIZE);
    put64(hdr, IMG_HDR_RAM_BYTES, p->ram_bytes);
    put64(hdr, IMG_HDR_METADATA_OFFSET, IMG_METADATA_OFFSET);
    put64(hdr, IMG_HDR_METADATA_BYTES, meta_bytes);
    put64(hdr, IMG_HDR_DATA_OFFSET, data_sector * SECTOR);
    put64(hdr, IMG_HDR_DATA_BYTES, compress ? stored : n * IMG_PAGE_SIZE);
    put32(hdr, IMG_HDR_COMPRESSION, compress ? IMG_COMPRESSION_LZ4 : IMG_COMPRESSION_NONE);
    put_text(hdr, IMG_HDR_STRATEGY, p->strategy, IMG_HDR_STRATEGY_SIZE);
    put32(hdr, IMG_HDR_FROZEN_TASKS, p->frozen_tasks);
    put32(hdr, IMG_HDR_CONTEXT_SIZE, p->context_bytes);
    memcpy(hdr + IMG_HDR_SAVED_CONTEXT, (const void *)p->context_address, p->context_bytes);
    if (p->map_in_header) {
        const struct smod_extent *e = (const struct smod_extent *)p->extents;
        put32(hdr, IMG_HDR_EXTENT_COUNT, p->extent_count);
        for (k = 0; k < p->extent_count; k++) {
            put32(hdr, IMG_HDR_EXTENTS + k * IMG_EXTENT_BYTES, e[k].first_sector);
            put32(hdr, IMG_HDR_EXTENTS + k * IMG_EXTENT_BYTES + 4, e[k].sectors);
        }
    }
    put32(hdr, IMG_HDR_METADATA_CRC, meta_crc);
    header_crc = crc32(0, hdr, IMG_HDR_BYTES);
    put32(hdr, IMG_HDR_HEADER_CRC, header_crc);
    write_logical(IMG_HEADER_OFFSET / SECTOR, hdr, IMG_PAGE_SIZE / SECTOR);
    ata_flush();

    /* 4. Last, the signature: the image is resumable from here on. */
    ata_read(0, 1, sec);
    if (get32(sec, IMG_SIG_SIGNATURE) != get32((const uint8_t *)IMG_SWAP_SIGNATURE, 0) ||
        get32(sec, IMG_SIG_SIGNATURE + 4) != get32((const uint8_t *)IMG_SWAP_SIGNATURE, 4))
        fail("sector 0 has no swap signature");
    put_text(sec, IMG_SIG_SIGNATURE, IMG_IMAGE_SIGNATURE, IMG_SIG_SIGNATURE_SIZE);
    put64(sec, IMG_SIG_HEADER_OFFSET, IMG_HEADER_OFFSET);
    put32(sec, IMG_SIG_HEADER_CRC, header_crc);
    ata_write(0, 1, sec);
    ata_flush();
    puts_serial("suspend module: done\n");

    /* 5. Back to the kernel, which powers off. */
    __asm__ volatile("jmp *%1" : : "a"(p->kernel_cr3), "r"(p->return_to));
    __builtin_unreachable();
}
