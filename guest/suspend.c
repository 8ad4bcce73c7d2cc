/*
 * The kernel's half of the suspend module (Maxim Levitsky's proposal, LKML, June 2010;
 * the module itself is guest/smod/). For PM SUSPEND_MODULE, with the tasks frozen:
 *
 *   1. load the module into frames the kernel takes for it (its binary is carried in
 *      the kernel image as data: smod_blob.S);
 *   2. list the memory areas to save (every frame in use but the hibernation's own and
 *      the NOSAVE holes, as runs) and the disk sectors of the image (one extent on a
 *      partition; with `fragments` F > 1 the image's sectors after the header in F
 *      extents placed in reverse order, as the blocks of a fragmented swap file, which
 *      the image's swap map then records);
 *   3. take a scratch space (metadata, header, a sector, the stack; to compress, also
 *      LZ4's hash table, a page of output and the staging buffer of the packed writes);
 *   4. build new page tables: the module (at SMOD_BASE), its lists and its scratch
 *      read-write, all other RAM read-only (identity, so it reads every page where it is);
 *   5. turn the devices off but the disk (every interrupt line masked; the disk is polled);
 *   6. at the atomic point (swsusp_arch_suspend_module: hypercall ATOMIC) switch to those
 *      page tables and jump into the module, writing nothing on the way;
 *   7. the module writes the image and comes back to smod_return, which powers off.
 *
 * Every frame taken here is OWNER_SNAPSHOT: the hibernation's own, never in the image,
 * so taking them does not change what the image must hold.
 */
#include "kernel.h"
#include "x86.h"
#include "image_format.h"
#include "smod/smod.h"

extern const uint8_t smod_blob[], smod_blob_end[];
int swsusp_arch_suspend_module(struct smod_params *p, uint32_t cr3);

#define BITMAP ((const uint32_t *)alloc_state.bitmap)
#define OWNER_OF(pfn) (((const uint8_t *)alloc_state.owner_map)[pfn])

static int saveable(uint32_t pfn)
{
    uint8_t o;
    if (!((BITMAP[pfn / 32] >> (pfn % 32)) & 1))
        return 0;
    o = OWNER_OF(pfn);
    return o != OWNER_SNAPSHOT && o != OWNER_NOSAVE;
}

static uint32_t take_page(void)
{
    uint32_t pa = alloc_page(OWNER_SNAPSHOT);
    if (pa)
        memset((void *)pa, 0, PAGE_SIZE);
    return pa;
}

/*
 * flags: SMOD_STRAY_WRITE, SMOD_COMPRESS; fragments: extents for the image's sectors after its header (0 or
 * 1: contiguous); ident: 32 bytes of build id and 32 of strategy name (the harness's).
 * Returns SMOD_RESUMED on the resume path; on the suspend path it does not return
 * (power off), unless it cannot start: SMOD_ERR_*, before the atomic point, nothing
 * changed but the frames it gave back.
 */
uint32_t suspend_module(uint32_t flags, uint32_t fragments, uint32_t ident, uint32_t frozen)
{
    const struct smod_header *h = (const struct smod_header *)smod_blob;
    uint32_t frames = alloc_state.frame_count, pfn, n = 0, runs = 0, prev = 0;
    uint32_t mod_pages, meta_pages, scratch_pages, list_bytes, list_pages, pt_pages, needed;
    uint32_t image_sectors, disk = ata_sector_count(), extent_count, i, k, scratch, lists, pd;
    struct smod_params *p;
    struct smod_area *area;
    struct smod_extent *ext;
    uint32_t mod_frames[64];

    if (h->magic != SMOD_MAGIC || h->entry < SMOD_BASE || h->end <= h->entry)
        panic("suspend: the module binary is broken");
    if (disk == 0)
        return SMOD_ERR_NO_DISK;
    mod_pages = PGROUNDUP(h->end - SMOD_BASE) / PAGE_SIZE;
    if (mod_pages > 64 || (uint32_t)(smod_blob_end - smod_blob) > mod_pages * PAGE_SIZE)
        panic("suspend: the module is larger than its frames");

    /* What to save: counted now, listed later (taking SNAPSHOT frames changes none of it). */
    for (pfn = 0; pfn < frames; pfn++) {
        int s = saveable(pfn);
        if (s) {
            n++;
            if (!prev)
                runs++;
        }
        prev = s;
    }
    meta_pages = PGROUNDUP(n * ((flags & SMOD_COMPRESS) ? IMG_METADATA_BYTES_PER_COMPRESSED_PAGE : IMG_METADATA_BYTES_PER_PAGE)) / PAGE_SIZE;
    image_sectors = (IMG_METADATA_OFFSET + meta_pages * PAGE_SIZE + n * PAGE_SIZE) / IMG_SECTOR_SIZE;
    if (image_sectors > disk)
        return SMOD_ERR_DISK_TOO_SMALL;
    if (fragments > IMG_MAX_EXTENTS - 1)
        return SMOD_ERR_FRAGMENTS;
    if (fragments == 0)
        fragments = 1;
    extent_count = fragments == 1 ? 1 : fragments + 1;
    scratch_pages = meta_pages + 2 + ((flags & SMOD_COMPRESS) ? SMOD_COMPRESS_SCRATCH_PAGES : 0) + SMOD_STACK_BYTES / PAGE_SIZE;
    list_bytes = sizeof(struct smod_params) + runs * sizeof(struct smod_area) + extent_count * sizeof(struct smod_extent);
    list_pages = PGROUNDUP(list_bytes) / PAGE_SIZE;
    pt_pages = 1 + (frames + 1023) / 1024 + 1;
    needed = mod_pages + scratch_pages + list_pages + pt_pages;
    if (needed > alloc_state.free_count)
        return SMOD_ERR_MEMORY;

    /* 1, 3: the module's frames, the scratch space, the lists. */
    scratch = alloc_contig(scratch_pages, OWNER_SNAPSHOT);
    lists = alloc_contig(list_pages, OWNER_SNAPSHOT);
    if (!scratch || !lists)
        return SMOD_ERR_MEMORY;     /* the next hibernation attempt's PM DONE checks the allocator; the harness frees SNAPSHOT frames */
    memset((void *)lists, 0, list_pages * PAGE_SIZE);
    for (i = 0; i < mod_pages; i++) {
        mod_frames[i] = take_page();
        if (!mod_frames[i])
            return SMOD_ERR_MEMORY;
    }
    for (i = 0; i < (uint32_t)(smod_blob_end - smod_blob); i++)
        ((uint8_t *)mod_frames[i / PAGE_SIZE])[i % PAGE_SIZE] = smod_blob[i];

    /* 2: the lists. */
    p = (struct smod_params *)lists;
    area = (struct smod_area *)(p + 1);
    ext = (struct smod_extent *)(area + runs);
    k = 0;
    prev = 0;
    for (pfn = 0; pfn < frames; pfn++) {
        int s = saveable(pfn);
        if (s && !prev)
            area[k++] = (struct smod_area){ pfn, 0 };
        if (s)
            area[k - 1].count++;
        prev = s;
    }
    if (fragments == 1) {
        ext[0] = (struct smod_extent){ 0, image_sectors };
    } else {
        uint32_t rest = image_sectors - IMG_HEADER_OFFSET * 2 / IMG_SECTOR_SIZE, size = (rest + fragments - 1) / fragments;
        uint32_t end = image_sectors, at = 0;
        ext[0] = (struct smod_extent){ 0, IMG_HEADER_OFFSET * 2 / IMG_SECTOR_SIZE };
        for (i = 1; i <= fragments; i++) {
            uint32_t c = rest - at < size ? rest - at : size;
            end -= c;
            ext[i] = (struct smod_extent){ end, c };
            at += c;
        }
    }

    /* 4: the module's page tables. */
    pd = take_page();
    if (!pd)
        return SMOD_ERR_MEMORY;
    for (i = 0; i < (frames + 1023) / 1024; i++) {
        uint32_t pt = take_page(), j;
        if (!pt)
            return SMOD_ERR_MEMORY;
        for (j = 0; j < 1024 && i * 1024 + j < frames; j++) {
            uint32_t f = i * 1024 + j, pa = f * PAGE_SIZE;
            int rw = (pa >= scratch && pa < scratch + scratch_pages * PAGE_SIZE) || (pa >= lists && pa < lists + list_pages * PAGE_SIZE);
            ((uint32_t *)pt)[j] = pa | PTE_P | (rw ? PTE_W : 0);
        }
        ((uint32_t *)pd)[i] = pt | PTE_P | PTE_W;
    }
    {
        uint32_t pt = take_page();
        if (!pt)
            return SMOD_ERR_MEMORY;
        for (i = 0; i < mod_pages; i++)
            ((uint32_t *)pt)[i] = mod_frames[i] | PTE_P | PTE_W;
        ((uint32_t *)pd)[SMOD_BASE >> 22] = pt | PTE_P | PTE_W;
    }

    p->magic = SMOD_MAGIC;
    p->flags = flags;
    p->kernel_cr3 = kernel_cr3;
    p->return_to = (uint32_t)smod_return;
    p->stack_top = scratch + scratch_pages * PAGE_SIZE;
    p->areas = (uint32_t)area;
    p->area_count = runs;
    p->page_count = n;
    p->extents = (uint32_t)ext;
    p->extent_count = extent_count;
    p->map_in_header = fragments > 1;
    p->scratch = scratch;
    p->scratch_bytes = scratch_pages * PAGE_SIZE;
    p->frame_count = frames;
    p->ram_bytes = ram_bytes;
    p->context_address = (uint32_t)&saved_context;
    p->context_bytes = SIZEOF_SAVED_CONTEXT;
    p->frozen_tasks = frozen;
    p->stray_address = (uint32_t)&boot_info;
    memcpy(p->build_id, (const void *)ident, 32);
    memcpy(p->strategy, (const void *)(ident + 32), 32);
    p->entry = h->entry;
    kprintf("suspend: module %u pages at %p, %u pages in %u areas, %u extents, scratch %u pages, tables %u pages\n",
            mod_pages, (void *)SMOD_BASE, n, runs, extent_count, scratch_pages, pt_pages);

    /* 5: devices off but the disk. */
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);

    /* 6: the atomic point, and into the module (the resume path comes back here with 1). */
    if (swsusp_arch_suspend_module(p, pd) != 0)
        return SMOD_RESUMED;
    panic("suspend: the module came back to the caller");
}
