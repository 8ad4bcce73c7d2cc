/*
 * The page-frame allocator: one bit per frame (1 = in use) plus one owner
 * byte per frame (an OWNER_* code, 0 = free), both placed right after the
 * kernel image. All state lives in struct alloc_state, and every call reads
 * it afresh, so the harness may allocate through the same bitmap, owner map
 * and counters while the guest is stopped at a hypercall (the allocator never
 * makes one).
 *
 * The guest's own calls run with interrupts off, so a hypercall by another
 * task never finds an allocation half done.
 *
 * Invariant: for every frame, its bit is set iff its owner is not 0, and
 * free_count is the number of clear bits. RAM below 1 MiB is OWNER_RESERVED
 * and every hole in the memory map (the VGA window) OWNER_NOSAVE; neither is
 * ever freed, and a hibernation image never holds a NOSAVE frame.
 *
 * The kernel's own allocations come from a zone, zone_start .. zone_end
 * (all frames, unless reserve= asks for a reserved region: then the boot
 * confines itself to the frames below it, and a normal boot leaves them free
 * afterwards, so that a boot kernel living there finds every other frame
 * free; see main.c). With lowmem= the zone ends at lowmem: the frames above
 * are highmem, which only alloc_high_page hands out (for pages the kernel
 * reaches through temporary mappings: the cache). The harness may take any
 * free frame.
 */
#include "kernel.h"

#define MBI_FLAGS 0
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_FLAG_MMAP (1 << 6)
#define MMAP_TYPE_RAM 1
#define LOW_MEMORY 0x100000

struct alloc_state alloc_state;
uint32_t ram_bytes;
uint32_t lowmem_bytes;                  /* = ram_bytes without lowmem= */
static uint32_t high_hint;

#define BITMAP ((uint32_t *)alloc_state.bitmap)
#define OWNERS ((uint8_t *)alloc_state.owner_map)

/* Return 1 if frame pfn is in use (its bit is set). */
static inline int frame_used(uint32_t pfn)
{
    return (BITMAP[pfn / 32] >> (pfn % 32)) & 1;
}

/* Mark frame pfn in use by owner (bit and owner byte together). */
static void frame_take(uint32_t pfn, int owner)
{
    BITMAP[pfn / 32] |= 1u << (pfn % 32);
    OWNERS[pfn] = (uint8_t)owner;
    alloc_state.free_count--;
}

/* Mark frame pfn free. */
static void frame_release(uint32_t pfn)
{
    BITMAP[pfn / 32] &= ~(1u << (pfn % 32));
    OWNERS[pfn] = OWNER_FREE;
    alloc_state.free_count++;
}

/* Walk the multiboot memory map; call fn(base, end) for every RAM region below 4 GiB. */
static void for_each_ram_region(uint32_t mbi, void (*fn)(uint64_t base, uint64_t end))
{
    uint32_t p, end;

    if (!(*(uint32_t *)(mbi + MBI_FLAGS) & MBI_FLAG_MMAP))
        panic("alloc: no multiboot memory map");
    p = *(uint32_t *)(mbi + MBI_MMAP_ADDR);
    end = p + *(uint32_t *)(mbi + MBI_MMAP_LENGTH);
    while (p < end) {
        uint32_t size = *(uint32_t *)p;
        uint64_t base = *(uint64_t *)(p + 4);
        uint64_t len = *(uint64_t *)(p + 12);
        uint32_t type = *(uint32_t *)(p + 20);
        if (type == MMAP_TYPE_RAM && base < 0x100000000ull) {
            uint64_t top = base + len;
            if (top > 0xFFC00000ull)
                top = 0xFFC00000ull;
            fn(base, top);
        }
        p += size + 4;
    }
}

/* for_each_ram_region callback: raise ram_bytes to the end of this region. */
static void note_top(uint64_t base, uint64_t end)
{
    (void)base;
    if (end > ram_bytes)
        ram_bytes = PGROUNDDOWN((uint32_t)end);
}

/*
 * for_each_ram_region callback: the whole frames of [base, end) are RAM: free
 * above 1 MiB, reserved (in use, saved) below it.
 */
static void free_region(uint64_t base, uint64_t end)
{
    uint32_t pfn = (uint32_t)((base + PAGE_SIZE - 1) / PAGE_SIZE);
    uint32_t last = (uint32_t)(end / PAGE_SIZE);

    for (; pfn < last && pfn < alloc_state.frame_count; pfn++) {
        if (OWNERS[pfn] != OWNER_NOSAVE)
            continue;
        if (pfn < LOW_MEMORY / PAGE_SIZE) {
            OWNERS[pfn] = OWNER_RESERVED;
            continue;
        }
        BITMAP[pfn / 32] &= ~(1u << (pfn % 32));
        OWNERS[pfn] = OWNER_FREE;
        alloc_state.free_count++;
    }
}

/* Mark every frame of [start, end) in use by owner; panic unless each was free RAM. */
static void take_range(uint32_t start, uint32_t end, int owner)
{
    uint32_t pfn;
    for (pfn = start / PAGE_SIZE; pfn < PGROUNDUP(end) / PAGE_SIZE; pfn++) {
        if (pfn >= alloc_state.frame_count || frame_used(pfn))
            panic("alloc: boot range not free RAM");
        frame_take(pfn, owner);
    }
}

/* Size RAM from the memory map, place the bitmap and owner map after the kernel, mark what is in use. */
void alloc_init(uint32_t mbi)
{
    uint32_t frames, bitmap_bytes, owner_bytes, base;

    ram_bytes = 0;
    for_each_ram_region(mbi, note_top);
    if (ram_bytes < 2 * LOW_MEMORY)
        panic("alloc: no RAM above 1 MiB");
    lowmem_bytes = ram_bytes;
    frames = ram_bytes / PAGE_SIZE;
    bitmap_bytes = PGROUNDUP((frames + 31) / 32 * 4);
    owner_bytes = PGROUNDUP(frames);
    base = PGROUNDUP((uint32_t)kernel_end);
    if (base + bitmap_bytes + owner_bytes > ram_bytes)
        panic("alloc: RAM too small for the allocator");

    alloc_state.bitmap = base;
    alloc_state.owner_map = base + bitmap_bytes;
    alloc_state.frame_count = frames;
    alloc_state.free_count = 0;
    alloc_state.next_hint = LOW_MEMORY / PAGE_SIZE;
    alloc_state.zone_start = 0;
    alloc_state.zone_end = frames;
    memset(BITMAP, 0xFF, bitmap_bytes);          /* padding bits past frame_count stay set */
    memset(OWNERS, OWNER_NOSAVE, owner_bytes);      /* until the memory map says RAM */

    for_each_ram_region(mbi, free_region);
    take_range((uint32_t)kernel_start, PGROUNDUP((uint32_t)kernel_end), OWNER_KERNEL);
    take_range(alloc_state.bitmap, alloc_state.owner_map + owner_bytes, OWNER_ALLOCATOR);
    alloc_check();
}

/* Return the first free pfn of lo .. hi - 1 at or after start (wrapping around), or frame_count if none. */
static uint32_t find_free_in(uint32_t lo, uint32_t hi, uint32_t start)
{
    uint32_t n = hi - lo, k, pfn;

    if (start < lo || start >= hi)
        start = lo;
    for (k = 0; k < n; k++) {
        pfn = start + k;
        if (pfn >= hi)
            pfn -= n;
        if (pfn % 32 == 0 && pfn + 32 <= hi && BITMAP[pfn / 32] == 0xFFFFFFFFu) {
            k += 31;                        /* a full word: skip it */
            continue;
        }
        if (!frame_used(pfn))
            return pfn;
    }
    return alloc_state.frame_count;
}

/* Return the first free pfn of the zone at or after start (wrapping around in the zone), or frame_count if none. */
static uint32_t find_free(uint32_t start)
{
    return find_free_in(alloc_state.zone_start, alloc_state.zone_end, start);
}

/* From now on the kernel allocates only frames start .. end - 1 (reserve=; the harness may take any). */
void alloc_set_zone(uint32_t start, uint32_t end)
{
    if (start >= end || end > alloc_state.frame_count)
        panic("alloc_set_zone: bad zone");
    alloc_state.zone_start = start;
    alloc_state.zone_end = end;
    alloc_state.next_hint = start;
}

/* Allocate one frame for owner; return its physical address, 0 if memory is exhausted. */
uint32_t alloc_page(int owner)
{
    uint32_t pfn, f;

    if (owner == OWNER_FREE || owner > 0xFF)
        panic("alloc_page: bad owner");
    f = irq_save();
    if (alloc_state.free_count == 0) {
        irq_restore(f);
        return 0;
    }
    pfn = find_free(alloc_state.next_hint);
    if (pfn >= alloc_state.frame_count) {        /* free frames, but none in the zone */
        irq_restore(f);
        return 0;
    }
    frame_take(pfn, owner);
    alloc_state.next_hint = pfn + 1 < alloc_state.frame_count ? pfn + 1 : 0;
    irq_restore(f);
    return pfn * PAGE_SIZE;
}

/*
 * Allocate one highmem frame for owner (lowmem=): a frame above lowmem, which the
 * kernel reaches only through kmap; a lowmem frame of the zone when highmem is full,
 * or while the kernel confines itself to a reserved region below lowmem. Return its
 * physical address, 0 if memory is exhausted.
 */
uint32_t alloc_high_page(int owner)
{
    uint32_t lo = lowmem_bytes / PAGE_SIZE, pfn, f;

    if (lo >= alloc_state.frame_count || alloc_state.zone_end < lo)
        return alloc_page(owner);
    f = irq_save();
    pfn = find_free_in(lo, alloc_state.frame_count, high_hint);
    if (pfn >= alloc_state.frame_count) {
        irq_restore(f);
        return alloc_page(owner);
    }
    frame_take(pfn, owner);
    high_hint = pfn + 1;
    irq_restore(f);
    return pfn * PAGE_SIZE;
}

/* Return the first pfn of the lowest run of n free frames, or frame_count if there is none. */
static uint32_t find_free_run(uint32_t n)
{
    uint32_t pfn, run = 0;

    for (pfn = alloc_state.zone_start; pfn < alloc_state.zone_end; pfn++) {
        if (pfn % 32 == 0 && pfn + 32 <= alloc_state.zone_end && BITMAP[pfn / 32] == 0xFFFFFFFFu) {
            run = 0;
            pfn += 31;                      /* skip a full word */
            continue;
        }
        run = frame_used(pfn) ? 0 : run + 1;
        if (run == n)
            return pfn + 1 - n;
    }
    return alloc_state.frame_count;
}

/* Allocate n physically contiguous frames for owner (first fit); return the first address, 0 if none. */
uint32_t alloc_contig(uint32_t n, int owner)
{
    uint32_t first, i, f;

    if (owner == OWNER_FREE || owner > 0xFF || n == 0)
        panic("alloc_contig: bad argument");
    f = irq_save();
    first = alloc_state.free_count >= n ? find_free_run(n) : alloc_state.frame_count;
    if (first >= alloc_state.frame_count) {
        irq_restore(f);
        return 0;
    }
    for (i = first; i < first + n; i++)
        frame_take(i, owner);
    irq_restore(f);
    return first * PAGE_SIZE;
}

/* Free the frame at addr; panic on a bad address, a double free or a reserved frame. */
void free_page(uint32_t addr)
{
    uint32_t pfn = addr / PAGE_SIZE, f;

    if (addr % PAGE_SIZE || pfn >= alloc_state.frame_count)
        panic("free_page: bad address");
    f = irq_save();
    if (!frame_used(pfn))
        panic("free_page: double free");
    if (OWNERS[pfn] == OWNER_RESERVED || OWNERS[pfn] == OWNER_NOSAVE || OWNERS[pfn] == OWNER_KERNEL || OWNERS[pfn] == OWNER_ALLOCATOR)
        panic("free_page: frame is not freeable");
    frame_release(pfn);
    irq_restore(f);
}

/* Free n contiguous frames starting at addr. */
void free_contig(uint32_t addr, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        free_page(addr + i * PAGE_SIZE);
}

/* Check the allocator invariant over every frame; panic if it does not hold. */
void alloc_check(void)
{
    uint32_t pfn, clear = 0;

    for (pfn = 0; pfn < alloc_state.frame_count; pfn++) {
        int used = frame_used(pfn);
        if (used != (OWNERS[pfn] != OWNER_FREE))
            panic("alloc_check: bitmap and owner map disagree");
        clear += !used;
    }
    if (clear != alloc_state.free_count)
        panic("alloc_check: free_count is wrong");
}
