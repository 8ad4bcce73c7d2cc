/*
 * The suspend module's binary (built from guest/smod/ by `npm run build:guest`, linked at
 * SMOD_BASE), carried in the kernel image as data: suspend.c copies it into frames of
 * its own and maps them at SMOD_BASE. SMOD_BIN is the path of the binary, given by the
 * build.
 */
.section .rodata
.balign 4096
.globl smod_blob
smod_blob:
    .incbin SMOD_BIN
.globl smod_blob_end
smod_blob_end:
