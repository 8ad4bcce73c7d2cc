/*
 * Paging: lowmem, 0 .. lowmem_bytes (all RAM unless lowmem= says less),
 * identity mapped (virtual = physical), supervisor read/write, nothing mapped
 * beyond it but the KMAP slots. With 4 KiB pages (the default) every frame has
 * its own PTE, so the harness can write-protect single pages. With `pages=4m`
 * every whole 4 MiB of lowmem is one PSE page and only a partial last 4 MiB
 * gets a page table. Page directory and page tables come from the allocator as
 * OWNER_PAGETABLE. CR0.WP makes read-only PTEs bind the kernel too.
 *
 * Highmem (the frames above lowmem) has no permanent mapping: the kernel maps a
 * frame for a moment into one of KMAP_SLOTS page-sized slots at KMAP_BASE (a
 * page table of their own), with interrupts off, like Linux's kmap_atomic.
 */
#include "kernel.h"
#include "x86.h"

#define PDE_PS 0x080
#define LARGE_PAGE 0x400000u

uint32_t kernel_cr3;

/* Return a zeroed frame for a paging structure; panic if memory is exhausted. */
static uint32_t *kmap_table;

static uint32_t *alloc_table(void)
{
    uint32_t pa = alloc_page(OWNER_PAGETABLE);
    if (pa == 0)
        panic("paging: out of memory");
    memset((void *)pa, 0, PAGE_SIZE);
    return (uint32_t *)pa;
}

/* Build the identity map of RAM and turn paging on (CR4.PSE if large_pages, CR0.PG|WP). */
void paging_init(int large_pages)
{
    uint32_t *pd = alloc_table();
    uint32_t a;

    for (a = 0; a < lowmem_bytes; a += LARGE_PAGE) {
        uint32_t *pt, p;
        if (large_pages && lowmem_bytes - a >= LARGE_PAGE) {
            pd[a >> 22] = a | PDE_PS | PTE_W | PTE_P;
            continue;
        }
        pt = alloc_table();
        for (p = a; p < a + LARGE_PAGE && p < lowmem_bytes; p += PAGE_SIZE)
            pt[(p >> 12) & 0x3FF] = p | PTE_W | PTE_P;
        pd[a >> 22] = (uint32_t)pt | PTE_W | PTE_P;
    }
    if (lowmem_bytes < ram_bytes) {
        kmap_table = alloc_table();
        pd[KMAP_BASE >> 22] = (uint32_t)kmap_table | PTE_W | PTE_P;
    }
    kernel_cr3 = (uint32_t)pd;
    lcr3(kernel_cr3);
    if (large_pages)
        lcr4(rcr4() | CR4_PSE);
    lcr0(rcr0() | CR0_PG | CR0_WP);
}

/* Return the PTE that maps va with a 4 KiB page, or 0 if va is unmapped or in a 4 MiB page. */
uint32_t *paging_pte(uint32_t va)
{
    uint32_t pde = ((uint32_t *)kernel_cr3)[va >> 22];
    if (!(pde & PTE_P) || (pde & PDE_PS))
        return 0;
    return &((uint32_t *)(pde & ~0xFFFu))[(va >> 12) & 0x3FF];
}

/*
 * Return a pointer to the frame at physical address pa: itself in lowmem, else the
 * frame mapped into KMAP slot `slot`. The caller keeps interrupts off until kunmap.
 */
void *kmap(int slot, uint32_t pa)
{
    uint32_t va = KMAP_BASE + (uint32_t)slot * PAGE_SIZE;

    if (pa < lowmem_bytes)
        return (void *)pa;
    if (!kmap_table || slot < 0 || slot >= KMAP_SLOTS)
        panic("kmap: no such slot");
    kmap_table[slot] = PGROUNDDOWN(pa) | PTE_W | PTE_P;
    invlpg(va);
    return (void *)va;
}

/* Unmap KMAP slot `slot` (nothing to do for a lowmem frame). */
void kunmap(int slot)
{
    uint32_t va = KMAP_BASE + (uint32_t)slot * PAGE_SIZE;

    if (!kmap_table || !kmap_table[slot])
        return;
    kmap_table[slot] = 0;
    invlpg(va);
}
