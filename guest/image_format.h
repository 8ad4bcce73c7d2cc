/* Generated from src/image/layout.ts by `npm run build:guest`: do not edit. */
/* The hibernation image format (docs/IMAGE-FORMAT.md), for guest code that writes images. */
#ifndef HIBERLAB_IMAGE_FORMAT_H
#define HIBERLAB_IMAGE_FORMAT_H

#define IMG_FORMAT_VERSION 4
#define IMG_SECTOR_SIZE 512
#define IMG_PAGE_SIZE 4096
#define IMG_HEADER_OFFSET 4096
#define IMG_METADATA_OFFSET 8192
#define IMG_METADATA_BYTES_PER_PAGE 8
#define IMG_METADATA_BYTES_PER_COMPRESSED_PAGE 12
#define IMG_COMPRESSION_NONE 0
#define IMG_COMPRESSION_LZ4 1
#define IMG_MAX_EXTENTS 256
#define IMG_EXTENT_BYTES 8
#define IMG_MAX_FRAMES 1048576
#define IMG_SWAP_SIGNATURE "HLSWAP01"
#define IMG_IMAGE_SIGNATURE "HLIMAGE1"
#define IMG_MAGIC "HIBERLAB"

/* The signature block, sector 0. */
#define IMG_SIG_SIGNATURE 0 /* ascii, 8 bytes: "HLSWAP01" (empty swap device) or "HLIMAGE1" (resumable image) */
#define IMG_SIG_SIGNATURE_SIZE 8
#define IMG_SIG_PAGE_SIZE 8 /* u32, 4 bytes: 4096 */
#define IMG_SIG_PAGE_SIZE_SIZE 4
#define IMG_SIG_FLAGS 12 /* u32, 4 bytes: 0 (reserved) */
#define IMG_SIG_FLAGS_SIZE 4
#define IMG_SIG_DEVICE_BYTES 16 /* u64, 8 bytes: size of the device when it was made a swap device */
#define IMG_SIG_DEVICE_BYTES_SIZE 8
#define IMG_SIG_HEADER_OFFSET 24 /* u64, 8 bytes: image only: byte offset of the image header (4096); 0 otherwise */
#define IMG_SIG_HEADER_OFFSET_SIZE 8
#define IMG_SIG_HEADER_CRC 32 /* u32, 4 bytes: image only: the header_crc of that header; 0 otherwise */
#define IMG_SIG_HEADER_CRC_SIZE 4
#define IMG_SIG_BYTES 36

/* The image header at IMG_HEADER_OFFSET; header_crc covers IMG_HDR_BYTES bytes with header_crc zero. */
#define IMG_HDR_MAGIC 0 /* ascii, 8 bytes: "HIBERLAB" */
#define IMG_HDR_MAGIC_SIZE 8
#define IMG_HDR_VERSION 8 /* u32, 4 bytes: format version (4) */
#define IMG_HDR_VERSION_SIZE 4
#define IMG_HDR_HEADER_SIZE 12 /* u32, 4 bytes: bytes covered by header_crc: the size of this table */
#define IMG_HDR_HEADER_SIZE_SIZE 4
#define IMG_HDR_PAGE_SIZE 16 /* u32, 4 bytes: 4096 */
#define IMG_HDR_PAGE_SIZE_SIZE 4
#define IMG_HDR_FRAME_COUNT 20 /* u32, 4 bytes: frames of the hibernated guest; every PFN is below it (at most 1048576) */
#define IMG_HDR_FRAME_COUNT_SIZE 4
#define IMG_HDR_PAGE_COUNT 24 /* u32, 4 bytes: pages in the image (at most frame_count) */
#define IMG_HDR_PAGE_COUNT_SIZE 4
#define IMG_HDR_CONTEXT_ADDRESS 28 /* u32, 4 bytes: guest physical address of the guest's struct saved_context */
#define IMG_HDR_CONTEXT_ADDRESS_SIZE 4
#define IMG_HDR_BUILD_ID 32 /* bytes, 32 bytes: sha256 of the guest ELF that wrote the image (raw bytes) */
#define IMG_HDR_BUILD_ID_SIZE 32
#define IMG_HDR_RAM_BYTES 64 /* u64, 8 bytes: RAM size of the hibernated guest */
#define IMG_HDR_RAM_BYTES_SIZE 8
#define IMG_HDR_METADATA_OFFSET 72 /* u64, 8 bytes: byte offset of the metadata (8192), page aligned */
#define IMG_HDR_METADATA_OFFSET_SIZE 8
#define IMG_HDR_METADATA_BYTES 80 /* u64, 8 bytes: page_count x 8 (PFNs, then CRCs), compressed: page_count x 12 (PFNs, CRCs, stored sizes); padding not included */
#define IMG_HDR_METADATA_BYTES_SIZE 8
#define IMG_HDR_DATA_OFFSET 88 /* u64, 8 bytes: byte offset of the data: metadata end rounded up to a page */
#define IMG_HDR_DATA_OFFSET_SIZE 8
#define IMG_HDR_DATA_BYTES 96 /* u64, 8 bytes: page_count x 4096; compressed: the sum of the stored sizes */
#define IMG_HDR_DATA_BYTES_SIZE 8
#define IMG_HDR_STRATEGY 104 /* ascii, 32 bytes: name of the save strategy, NUL padded */
#define IMG_HDR_STRATEGY_SIZE 32
#define IMG_HDR_ATOMIC_COPY_PAGES 136 /* u32, 4 bytes: stats: pages copied at the atomic point */
#define IMG_HDR_ATOMIC_COPY_PAGES_SIZE 4
#define IMG_HDR_LIVE_WRITTEN_PAGES 140 /* u32, 4 bytes: stats: pages written while the guest was running */
#define IMG_HDR_LIVE_WRITTEN_PAGES_SIZE 4
#define IMG_HDR_REWRITTEN_PAGES 144 /* u32, 4 bytes: stats: page writes that replaced an earlier write of the same page (counted by the writer) */
#define IMG_HDR_REWRITTEN_PAGES_SIZE 4
#define IMG_HDR_WP_FAULTS 148 /* u32, 4 bytes: stats: write-protect faults taken during the save */
#define IMG_HDR_WP_FAULTS_SIZE 4
#define IMG_HDR_PRECOPY_ROUNDS 152 /* u32, 4 bytes: stats: pre-copy rounds before the atomic point */
#define IMG_HDR_PRECOPY_ROUNDS_SIZE 4
#define IMG_HDR_FROZEN_TASKS 156 /* u32, 4 bytes: stats: tasks frozen at the atomic point */
#define IMG_HDR_FROZEN_TASKS_SIZE 4
#define IMG_HDR_COMPRESSION 160 /* u32, 4 bytes: 0: pages stored whole; 1: each page an LZ4 block, packed (the suspend module's option) */
#define IMG_HDR_COMPRESSION_SIZE 4
#define IMG_HDR_RESERVED 164 /* u32, 4 bytes: zero */
#define IMG_HDR_RESERVED_SIZE 4
#define IMG_HDR_CONTEXT_SIZE 168 /* u32, 4 bytes: bytes of saved_context (92) */
#define IMG_HDR_CONTEXT_SIZE_SIZE 4
#define IMG_HDR_SAVED_CONTEXT 172 /* bytes, 92 bytes: the guest's struct saved_context at the atomic point (opaque here) */
#define IMG_HDR_SAVED_CONTEXT_SIZE 92
#define IMG_HDR_EXTENT_COUNT 264 /* u32, 4 bytes: extents in the swap map below (0: the image lies on the device as its offsets say; at most 256) */
#define IMG_HDR_EXTENT_COUNT_SIZE 4
#define IMG_HDR_EXTENTS 268 /* bytes, 2048 bytes: the swap map: extent_count x (u32 first physical sector, u32 sectors), zero after; logical sector s of the image is in the extent whose sectors, counted in order from 0, include s. The first extent starts at sector 0 and covers the signature block and this header */
#define IMG_HDR_EXTENTS_SIZE 2048
#define IMG_HDR_METADATA_CRC 2316 /* u32, 4 bytes: CRC32 of the metadata_bytes bytes of metadata */
#define IMG_HDR_METADATA_CRC_SIZE 4
#define IMG_HDR_HEADER_CRC 2320 /* u32, 4 bytes: CRC32 of the header_size bytes of this header with this field zero */
#define IMG_HDR_HEADER_CRC_SIZE 4
#define IMG_HDR_BYTES 2324

#endif /* HIBERLAB_IMAGE_FORMAT_H */
