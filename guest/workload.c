/*
 * Workloads: tasks that mutate their own memory so that its content is a
 * closed-form function of (seed, step count), which both the task and the
 * harness can recompute.
 *
 * A churn or stream workload owns one contiguous region: a header page
 * (struct workload_header) followed by W data words (BYTES rounded up to whole
 * pages). Word j holds mix(seed, j, n), where n is the number of times word j
 * was written after the initial fill (which writes n = 0 everywhere):
 *
 *     mix(seed, j, n) = pass_key(seed, n) ^ j*0x9E3779B9
 *     pass_key(seed, n) = fmix32(seed ^ n*0x85EBCA6B ^ 0x5bd1e995)
 *
 * One hash per pass, one multiply per word: every word of a pass differs from every
 * other (0x9E3779B9 is odd), and from the same word in any other pass (the keys
 * differ), so a stale, misplaced or changed word fails the check, and checking a
 * word costs a few instructions.
 *
 * Step s (the 64-bit header counter steps) writes word perm(s mod W) with
 * n = s / W + 1, then increments steps. perm is the identity for stream; for
 * churn it is an affine map y = (perm_mul*x + perm_add) mod 2^perm_bits,
 * cycle-walked into [0, W). Stream is churn with perm_mul = 1, perm_add = 0,
 * so one code path serves both. A step (store + increment) is never split by
 * a safe point, so a frozen task's region always satisfies the formula.
 *
 * A cache workload is not a task: BYTES of single pages (OWNER_CACHE),
 * reclaimable by drop_cache(), like a page cache. Their addresses sit in a
 * table (cache_state.table, KHEAP frames), not in the pages: word w of cache
 * page i is cache_word(seed, i, w) = cache_key(seed, i) ^ w*0x85EBCA6B, a function
 * of the seed and the page index only, so a fresh boot with the same command line makes the same pages, and
 * the kernel can check every one after a resume (cache_verify).
 */
#include "kernel.h"
#include "hypercall.h"

#define FREEZE_BATCH 4096       /* unlimited rate: steps between safe points */

struct cache_state cache_state;
volatile uint32_t workload_count;
volatile uint32_t workloads_filled;

static volatile uint8_t verify_pending[MAX_TASKS];

/* MurmurHash3's 32-bit finalizer. */
uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

#define WORD_MUL 0x9E3779B9u

/* The key of the words written n times since the fill: word j then holds key ^ j*WORD_MUL. */
static inline uint32_t pass_key(uint32_t seed, uint32_t n)
{
    return fmix32(seed ^ (n * 0x85EBCA6Bu) ^ 0x5bd1e995u);
}

/* 2^perm_bits - 1. */
static inline uint32_t perm_mask(const struct workload_header *h)
{
    return h->perm_bits >= 32 ? 0xFFFFFFFFu : (1u << h->perm_bits) - 1;
}

/* Step index x (0 <= x < W) -> word index, by cycle walking the affine map. */
static inline uint32_t perm(const struct workload_header *h, uint32_t x)
{
    uint32_t mask = perm_mask(h);
    do {
        x = (h->perm_mul * x + h->perm_add) & mask;
    } while (x >= h->words);
    return x;
}

/* Word index j -> step index x: perm's inverse, cycle walking the inverse map. */
static uint32_t perm_inverse(const struct workload_header *h, uint32_t j, uint32_t inv_mul)
{
    uint32_t mask = perm_mask(h);
    do {
        j = (inv_mul * (j - h->perm_add)) & mask;
    } while (j >= h->words);
    return j;
}

/* Return the inverse of odd a modulo 2^32 (Newton iteration: each round doubles the correct bits). */
static uint32_t inverse_mod_2_32(uint32_t a)
{
    uint32_t x = a;             /* a*a = 1 mod 8: 3 bits right */
    int i;
    for (i = 0; i < 5; i++)
        x *= 2 - a * x;
    return x;
}

/* Return the low 32 bits of (hi:lo) / d, the remainder in *rem (no libgcc: two divl). */
static uint32_t div64_32(uint32_t hi, uint32_t lo, uint32_t d, uint32_t *rem)
{
    uint32_t q, r = hi % d;
    __asm__("divl %4" : "=a"(q), "=d"(*rem) : "a"(lo), "d"(r), "rm"(d));
    return q;
}

/* The data words, one page after the header. */
static inline uint32_t *wl_data(struct workload_header *h)
{
    return (uint32_t *)((uint32_t)h + PAGE_SIZE);
}

/* Check every data word against the formula; report VERIFY and record the result in the header. */
static void verify(struct task_struct *t, struct workload_header *h)
{
    uint32_t *data = wl_data(h);
    uint32_t inv = inverse_mod_2_32(h->perm_mul);
    uint32_t rem, full = div64_32(h->steps_hi, h->steps_lo, h->words, &rem);
    uint32_t key[2] = { pass_key(h->seed, full), pass_key(h->seed, full + 1) };
    uint32_t j, bad = 0, first_bad = 0xFFFFFFFFu;

    for (j = 0; j < h->words; j++) {
        uint32_t x = rem == 0 ? 0 : perm_inverse(h, j, inv);
        if (data[j] != (key[x < rem] ^ (j * WORD_MUL))) {
            if (bad++ == 0)
                first_bad = j;
        }
    }
    h->verifications++;
    h->last_bad = bad;
    kprintf("verify: task %u (%s) steps %u:%u words %u bad %u\n",
            t->id, t->name, h->steps_hi, h->steps_lo, h->words, bad);
    hypercall(HC_VERIFY, t->id, h->words, bad, first_bad);
}

/* A workload's safe point: freeze if asked, then verify if asked. */
static void safe_point(struct task_struct *t, struct workload_header *h)
{
    try_to_freeze();
    if (verify_pending[t->id]) {
        verify_pending[t->id] = 0;
        verify(t, h);
    }
}

/* Body of every churn/stream task: fill once, then steps forever (rate-limited or not). */
static void workload_task(uint32_t arg)
{
    struct task_struct *t = current;
    struct workload_header *h = (struct workload_header *)t->buf_base;
    uint32_t *data = wl_data(h);
    uint32_t W = h->words, seed = h->seed;
    uint32_t pos, pass, j, i, f, key;

    (void)arg;

    key = pass_key(seed, 0);
    for (j = 0; j < W; j++)
        data[j] = key ^ (j * WORD_MUL);
    f = irq_save();
    workloads_filled++;
    irq_restore(f);

    pass = div64_32(h->steps_hi, h->steps_lo, W, &pos);    /* 0, 0 at boot */
    key = pass_key(seed, pass + 1);
    for (;;) {
        uint32_t batch = h->rate ? h->rate : FREEZE_BATCH;
        safe_point(t, h);
        for (i = 0; i < batch; i++) {
            j = perm(h, pos);
            data[j] = key ^ (j * WORD_MUL);
            if (++h->steps_lo == 0)
                h->steps_hi++;
            if (++pos == W) {
                pos = 0;
                pass++;
                key = pass_key(seed, pass + 1);
            }
        }
        if (h->rate)
            sleep_ticks_freezable(1);   /* the top of the loop is the next safe point */
    }
}

/*
 * Body of kwriter, the helper (workload `helper`): at each tick it runs, a safe point,
 * then one step counted in the first word of its page. It stays frozen with the others
 * unless a save thaws it alone (Kyle Moffett's selective thaw: "the processes needed
 * for sync").
 */
static void helper_task(uint32_t arg)
{
    volatile uint32_t *steps = (volatile uint32_t *)current->buf_base;

    (void)arg;
    for (;;) {
        try_to_freeze();
        (*steps)++;
        sleep_ticks_freezable(1);
    }
}

/* Create kwriter with one page of its own. */
static void create_helper(void)
{
    struct task_struct *t = task_create("kwriter", KIND_HELPER, 1, helper_task, 0);
    uint32_t page = alloc_page(OWNER_TASK_BASE + t->id);

    if (page == 0)
        panic("workload: out of memory for the helper");
    memset((void *)page, 0, PAGE_SIZE);
    t->buf_base = page;
    t->buf_bytes = PAGE_SIZE;
    kprintf("workload: task %u kwriter, page %p\n", t->id, (void *)page);
}

/* Create one churn/stream task with a region of bytes (rounded up to pages) and rate writes/ms. */
static void create_stepper(int kind, uint32_t bytes, uint32_t rate, uint32_t seed)
{
    static const char *const names[] = { [KIND_CHURN] = "churn", [KIND_STREAM] = "stream" };
    char name[16];
    struct task_struct *t;
    struct workload_header *h;
    uint32_t data_pages = PGROUNDUP(bytes) / PAGE_SIZE, region, k = 0;
    int n;

    if (bytes == 0 || bytes > 0x7FFFF000u)
        panic("workload: bad buffer size");
    n = strlen(names[kind]);
    memcpy(name, names[kind], n);
    if (task_count >= 10)
        name[n++] = '0' + task_count / 10;
    name[n++] = '0' + task_count % 10;
    name[n] = 0;
    t = task_create(name, kind, 1, workload_task, 0);
    region = alloc_contig(1 + data_pages, OWNER_TASK_BASE + t->id);
    if (region == 0)
        panic("workload: out of memory for the buffer");
    t->buf_base = region;
    t->buf_bytes = (1 + data_pages) * PAGE_SIZE;

    h = (struct workload_header *)region;
    memset(h, 0, PAGE_SIZE);
    h->magic = WORKLOAD_MAGIC;
    h->kind = kind;
    h->seed = seed * 1000003u + t->id;
    h->words = data_pages * (PAGE_SIZE / 4);
    while (k < 31 && (1u << k) < h->words)
        k++;
    h->perm_bits = k;
    if (kind == KIND_CHURN) {
        h->perm_mul = (fmix32(h->seed ^ 0x6A09E667u) & perm_mask(h)) | 1;
        h->perm_add = fmix32(h->seed ^ 0xBB67AE85u) & perm_mask(h);
    } else {
        h->perm_mul = 1;
        h->perm_add = 0;
    }
    h->rate = rate * (1000 / HZ);       /* writes per ms -> writes per tick */
    workload_count++;
    kprintf("workload: task %u %s %u words at %p rate %u/tick seed %x mul %x add %x bits %u\n",
            t->id, t->name, h->words, (void *)region, h->rate, h->seed, h->perm_mul, h->perm_add, h->perm_bits);
}

/* The key of cache page i: word w of the page holds cache_key ^ w*0x85EBCA6B. */
static inline uint32_t cache_key(uint32_t seed, uint32_t i)
{
    return fmix32(seed ^ (i * 0x9E3779B9u) ^ 0x27d4eb2fu);
}

/*
 * Fill the cache page at physical address pa with the words of page i of `seed`
 * (through a KMAP slot when it is in highmem, with interrupts off meanwhile).
 */
static void cache_page_fill(uint32_t pa, uint32_t seed, uint32_t i)
{
    uint32_t f = irq_save(), w, key = cache_key(seed, i);
    uint32_t *page = kmap(0, pa);

    for (w = 0; w < PAGE_SIZE / 4; w++)
        page[w] = key ^ (w * 0x85EBCA6Bu);
    kunmap(0);
    irq_restore(f);
}

/* Allocate bytes (rounded up to pages) of cache pages (highmem first) and their table; fill page i with cache_word(seed, i, .). */
static void create_cache(uint32_t bytes, uint32_t seed)
{
    struct cache_state *c = &cache_state;
    uint32_t n = PGROUNDUP(bytes) / PAGE_SIZE, i;
    uint32_t *table;

    if (c->configured)
        panic("cache: only one cache workload");
    c->configured = 1;
    c->seed = seed * 1000003u + 0xCAC4Eu;
    c->capacity = n;
    if (n == 0)
        return;
    table = (uint32_t *)alloc_contig(PGROUNDUP(n * 4) / PAGE_SIZE, OWNER_KHEAP);
    if (table == NULL)
        panic("cache: out of memory for the table");
    c->table = (uint32_t)table;
    for (i = 0; i < n; i++) {
        uint32_t page = alloc_high_page(OWNER_CACHE);
        if (page == 0)
            panic("cache: out of memory");
        cache_page_fill(page, c->seed, i);
        table[i] = page;
        c->pages = i + 1;
    }
    kprintf("workload: cache %u pages, table %p, seed %x\n", n, table, c->seed);
}

/* Free up to n cache pages, the highest index first; return how many were freed. */
uint32_t drop_cache(uint32_t n)
{
    struct cache_state *c = &cache_state;
    uint32_t *table = (uint32_t *)c->table;
    uint32_t dropped = 0;

    while (dropped < n && c->pages > 0) {
        c->pages--;
        free_page(table[c->pages]);
        table[c->pages] = 0;
        dropped++;
    }
    return dropped;
}

#define CACHE_REUSE_SALT 0x5eed0f11u

/*
 * The body of kcached, a boot kernel's task while the harness loads an image into it
 * (RESUME_CHECK said 2): each tick it reads other data into one cache page, as a page
 * cache reused for another file (the words of seed ^ CACHE_REUSE_SALT).
 */
void cache_refresh_task(uint32_t arg)
{
    struct cache_state *c = &cache_state;
    uint32_t i = 0;

    (void)arg;
    for (;;) {
        sleep_ticks(1);
        if (c->pages == 0)
            continue;
        i = (i + 1) % c->pages;
        cache_page_fill(((uint32_t *)c->table)[i], c->seed ^ CACHE_REUSE_SALT, i);
    }
}

/* Check every cache page against cache_word and report CACHE_VERIFY (if a cache workload was configured). */
void cache_verify(void)
{
    struct cache_state *c = &cache_state;
    const uint32_t *table = (const uint32_t *)c->table;
    uint32_t i, w, bad = 0, first_bad = 0xFFFFFFFFu;

    if (!c->configured)
        return;
    for (i = 0; i < c->pages; i++) {
        uint32_t f = irq_save();
        const uint32_t *page = kmap(0, table[i]);
        uint32_t key = cache_key(c->seed, i);
        for (w = 0; w < PAGE_SIZE / 4; w++) {
            if (page[w] != (key ^ (w * 0x85EBCA6Bu)) && bad++ == 0)
                first_bad = i * (PAGE_SIZE / 4) + w;
        }
        kunmap(0);
        irq_restore(f);
    }
    kprintf("verify: cache %u pages bad words %u\n", c->pages, bad);
    hypercall(HC_CACHE_VERIFY, 0, c->pages * (PAGE_SIZE / 4), bad, first_bad);
}

/* Ask every workload task to verify its region at its next safe point. */
void workload_request_verify_all(void)
{
    uint32_t i;
    for (i = 0; i < task_count; i++)
        if (task_table[i].kind == KIND_CHURN || task_table[i].kind == KIND_STREAM)
            verify_pending[i] = 1;
}

/* Parse "NAME:BYTES[@RATE]" at *sp (after NAME:); panic if malformed. */
static void parse_size_rate(const char **sp, uint32_t *bytes, uint32_t *rate, int rate_allowed)
{
    *rate = 0;
    if (!parse_u32(sp, bytes))
        panic("wl: bad size");
    if (**sp == '@' && rate_allowed) {
        (*sp)++;
        if (!parse_u32(sp, rate))
            panic("wl: bad rate");
    }
}

/*
 * Create the workloads of the command line (wl=SPEC,SPEC,...; none without wl=), seeded
 * by seed: at_boot = 1 creates only the caches read at boot (cache:BYTES@boot, before
 * RESUME_CHECK, so a boot kernel has them too), at_boot = 0 everything else.
 */
void workloads_create(uint32_t seed, int at_boot)
{
    static char spec[CMDLINE_MAX];
    const char *s = spec;
    uint32_t bytes, rate;

    if (!cmdline_get("wl", spec, sizeof(spec)))
        return;
    while (*s) {
        if (strncmp(s, "churn:", 6) == 0) {
            s += 6;
            parse_size_rate(&s, &bytes, &rate, 1);
            if (!at_boot)
                create_stepper(KIND_CHURN, bytes, rate, seed);
        } else if (strncmp(s, "stream:", 7) == 0) {
            s += 7;
            parse_size_rate(&s, &bytes, &rate, 1);
            if (!at_boot)
                create_stepper(KIND_STREAM, bytes, rate, seed);
        } else if (strncmp(s, "cache:", 6) == 0) {
            int boot;
            s += 6;
            parse_size_rate(&s, &bytes, &rate, 0);
            boot = strncmp(s, "@boot", 5) == 0;
            if (boot)
                s += 5;
            if (boot == at_boot)
                create_cache(bytes, seed);
        } else if (strncmp(s, "idle", 4) == 0) {
            s += 4;
        } else if (strncmp(s, "helper", 6) == 0) {
            s += 6;
            if (!at_boot)
                create_helper();
        } else {
            panic("wl: unknown workload");
        }
        if (*s == ',')
            s++;
        else if (*s != 0)
            panic("wl: expected ','");
    }
}
