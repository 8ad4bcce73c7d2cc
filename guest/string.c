/* The few libc string functions the kernel (and gcc's code generation) needs. */
#include "kernel.h"

/* gcc would turn the byte loops below back into calls to memset/memmove themselves. */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* Fill n bytes at dst with c; return dst. */
NO_LIBCALL void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    if (((uint32_t)d & 3) == 0 && (n & 3) == 0) {
        uint32_t w = (uint8_t)c * 0x01010101u;
        uint32_t count = n / 4;
        __asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(count) : "a"(w) : "memory");
        return dst;
    }
    while (n-- > 0)
        *d++ = (uint8_t)c;
    return dst;
}

/* Copy n bytes from src to dst (no overlap); return dst. */
void *memcpy(void *dst, const void *src, size_t n)
{
    return memmove(dst, src, n);
}

/* Copy n bytes from src to dst, overlap allowed; return dst. */
NO_LIBCALL void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (s < d && s + n > d) {
        while (n-- > 0)
            d[n] = s[n];
    } else {
        while (n-- > 0)
            *d++ = *s++;
    }
    return dst;
}

/* Compare n bytes; return <0, 0, >0 like memcmp(3). */
int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n > 0; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

/* Return the length of NUL-terminated s. */
size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* Compare at most n characters; return <0, 0, >0 like strncmp(3). */
int strncmp(const char *a, const char *b, size_t n)
{
    for (; n > 0 && *a && *a == *b; n--, a++, b++)
        ;
    if (n == 0)
        return 0;
    return (uint8_t)*a - (uint8_t)*b;
}

/* Copy src into dst[n], always NUL-terminated; return dst. */
char *safestrcpy(char *dst, const char *src, int n)
{
    char *d = dst;
    if (n <= 0)
        return dst;
    while (--n > 0 && (*d++ = *src++) != 0)
        ;
    *d = 0;
    return dst;
}
