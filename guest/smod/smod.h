/*
 * The suspend module (Maxim Levitsky's proposal, LKML, June 2010): a small, separate
 * program the kernel hands control to at the atomic point, which writes memory to the
 * disk through its own polling ATA driver and cannot change system memory. It is built
 * from guest/smod/ into a flat binary linked at SMOD_BASE and carried in the kernel
 * image as data (suspend.c loads it into frames of its own). This header is all the
 * kernel and the module share.
 */
#ifndef SMOD_H
#define SMOD_H

#define SMOD_BASE 0xF0000000            /* where the module runs, in its page tables */
#define SMOD_MAGIC 0x444f4d53           /* 'SMOD' */
#define SMOD_STACK_BYTES 16384
#define SMOD_STAGE_BYTES 65536          /* compressed pages are written 64 KiB at a time */
/* SMOD_COMPRESS's scratch: LZ4's hash table (2 pages), a page of output (+1), the staging buffer (+1 for a page that spills over) */
#define SMOD_COMPRESS_SCRATCH_PAGES (2 + 2 + SMOD_STAGE_BYTES / 4096 + 1)
#define SMOD_PARAMS_STACK_TOP 16        /* offsets in struct smod_params, for swsusp.S */
#define SMOD_PARAMS_ENTRY 20

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The first bytes of the module: what the kernel needs to load it. */
struct smod_header {
    uint32_t magic;
    uint32_t entry;                     /* _smod_entry (a virtual address) */
    uint32_t end;                       /* end of its bss: it takes end - SMOD_BASE bytes */
};

/* A run of frames to save, and a run of disk sectors (in the image's logical order). */
struct smod_area { uint32_t first_pfn, count; };
struct smod_extent { uint32_t first_sector, sectors; };

/* What the kernel gives the module (in its lists page, read-write to the module). */
struct smod_params {
    uint32_t magic;
    uint32_t flags;                     /* SMOD_FLAG_* */
    uint32_t kernel_cr3;                /* back to the kernel's page tables ... */
    uint32_t return_to;                 /* ... at smod_return, EAX = kernel_cr3 */
    uint32_t stack_top;
    uint32_t entry;                     /* the module's _smod_entry */
    uint32_t areas, area_count;         /* struct smod_area[]: the memory to save, ascending */
    uint32_t page_count;
    uint32_t extents, extent_count;     /* struct smod_extent[]: the image's sectors */
    uint32_t map_in_header;             /* 1: the extents go into the header's swap map */
    uint32_t scratch, scratch_bytes;    /* metadata, header, a sector, [SMOD_COMPRESS's], the stack */
    uint32_t frame_count;
    uint32_t ram_bytes;
    uint32_t context_address, context_bytes;
    uint32_t frozen_tasks;
    uint32_t stray_address;             /* SMOD_STRAY_WRITE: where */
    uint8_t build_id[32];
    char strategy[32];
};

_Static_assert(__builtin_offsetof(struct smod_params, stack_top) == SMOD_PARAMS_STACK_TOP, "smod_params.stack_top");
_Static_assert(__builtin_offsetof(struct smod_params, entry) == SMOD_PARAMS_ENTRY, "smod_params.entry");
#endif /* __ASSEMBLER__ */

#endif
