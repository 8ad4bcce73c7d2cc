/*
 * Paging: all RAM, 0 .. ram_bytes, identity mapped (virtual = physical),
 * supervisor read/write, nothing mapped beyond RAM. With 4 KiB pages (the
 * default) every frame has its own PTE, so the harness can write-protect
 * single pages. With `pages=4m` every whole 4 MiB of RAM is one PSE page and
 * only a partial last 4 MiB gets a page table. Page directory and page tables
 * come from the allocator as OWNER_PAGETABLE. CR0.WP makes read-only PTEs
 * bind the kernel too.
 */
#include "kernel.h"
#include "x86.h"

#define PDE_PS 0x080
#define LARGE_PAGE 0x400000u

uint32_t kernel_cr3;

/* Return a zeroed frame for a paging structure; panic if memory is exhausted. */
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

    for (a = 0; a < ram_bytes; a += LARGE_PAGE) {
        uint32_t *pt, p;
        if (large_pages && ram_bytes - a >= LARGE_PAGE) {
            pd[a >> 22] = a | PDE_PS | PTE_W | PTE_P;
            continue;
        }
        pt = alloc_table();
        for (p = a; p < a + LARGE_PAGE && p < ram_bytes; p += PAGE_SIZE)
            pt[(p >> 12) & 0x3FF] = p | PTE_W | PTE_P;
        pd[a >> 22] = (uint32_t)pt | PTE_W | PTE_P;
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
