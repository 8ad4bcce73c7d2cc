/**
 * The on-disk hibernation image: a swap device, the writer that puts an image on it,
 * the validator and reader of the resume side, and inspection. Layout: layout.ts and
 * docs/IMAGE-FORMAT.md.
 */

export { SwapDevice, MIN_DEVICE_BYTES, type SwapDeviceOpenOptions } from './swap-device.ts';
export { ImageWriter, type ImageStream, type ImageWriterOptions, type ImageStatsInput, type CommitOptions, type CommitResult } from './writer.ts';
export { validateImage, validateImageAsync, beginImageValidation, imageRamBytes, DEFAULT_CHUNK_BYTES, type ImageValidation, type ImageExpectations, type ValidateOptions, type ValidatedImage } from './validate.ts';
export { CrcThread } from './crc-thread.ts';
export { ImageReader, type PageChunk } from './reader.ts';
export { resetSignature, type SignatureWriteOptions } from './signature.ts';
export { inspectImage, formatInspection, type ImageInspection, type InspectedHeader, type InspectOptions, type CheckStatus } from './inspect.ts';
export { ImageError, IMAGE_ERROR_CODES, type ImageErrorCode, type ImageErrorFacts } from './errors.ts';
export {
  PAGE_SIZE, SECTOR_SIZE, FORMAT_VERSION, HEADER_OFFSET, HEADER_SIZE, CONTEXT_BYTES, BUILD_ID_BYTES, MAX_FRAMES,
  SWAP_SIGNATURE, IMAGE_SIGNATURE, IMAGE_MAGIC, HEADER_LAYOUT, SIGNATURE_LAYOUT, imageExtent, maxPagesFor,
  type ImageHeader, type ImageStats, type SavedContext, type Signature, type SignatureKind, type ImageExtent, type LayoutField,
} from './layout.ts';
export { crc32, crc32Pages, CRC32_IMPLEMENTATION, CRC32_PAGES_IMPLEMENTATION } from './crc.ts';
