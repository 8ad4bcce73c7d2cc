/*
 * The kernel command line: copied out of the multiboot info first thing (the
 * harness owns low memory), then looked up by key. Options are space-separated
 * KEY=VALUE words: wl=SPEC,... seed=N pages=4m crash=1|2|3 (planted failures, see pm.c).
 */
#include "kernel.h"

#define MBI_FLAGS 0
#define MBI_CMDLINE 16
#define MBI_FLAG_CMDLINE (1 << 2)

char cmdline[CMDLINE_MAX];

/* Copy the multiboot command line (if any) into cmdline[]; panic if it does not fit. */
void cmdline_init(uint32_t mbi)
{
    const char *src;
    size_t n;

    cmdline[0] = 0;
    if (!(*(uint32_t *)(mbi + MBI_FLAGS) & MBI_FLAG_CMDLINE))
        return;
    src = (const char *)*(uint32_t *)(mbi + MBI_CMDLINE);
    n = strlen(src);
    if (n >= CMDLINE_MAX)
        panic("cmdline: too long");
    memcpy(cmdline, src, n + 1);
}

/* Find word KEY=VALUE; copy VALUE into out[outlen]; return 1 if found, 0 if not. */
int cmdline_get(const char *key, char *out, int outlen)
{
    size_t klen = strlen(key);
    const char *p = cmdline;

    while (*p) {
        const char *w = p;
        int n = 0;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - w) > klen && strncmp(w, key, klen) == 0 && w[klen] == '=') {
            w += klen + 1;
            while (w < p && n < outlen - 1)
                out[n++] = *w++;
            if (w < p)
                panic("cmdline: value too long");
            out[n] = 0;
            return 1;
        }
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* Parse a decimal u32 at *sp, advancing *sp; return 1 on success, 0 if no digits or overflow. */
int parse_u32(const char **sp, uint32_t *out)
{
    const char *s = *sp;
    uint32_t v = 0;

    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9') {
        uint32_t d = *s++ - '0';
        if (v > (0xFFFFFFFFu - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 1;
}

/* Look up KEY=N (decimal u32); return 1 and set *out if present, 0 if absent; panic if malformed. */
int cmdline_u32(const char *key, uint32_t *out)
{
    char buf[16];
    const char *s = buf;

    if (!cmdline_get(key, buf, sizeof(buf)))
        return 0;
    if (!parse_u32(&s, out) || *s != 0)
        panic("cmdline: bad number");
    return 1;
}
