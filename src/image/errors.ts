/**
 * Errors of the image format: one class, a code per failure, and the facts as fields.
 *
 * The validation codes come in the order validateImage checks them; the device and
 * writer codes follow. Every message says what is wrong and where (path, offset, page
 * index, PFN), with the stored and the computed value where there are two.
 */
import { HiberlabError } from '../errors.ts';

export const IMAGE_ERROR_CODES = {
  NO_SIGNATURE: 'The device has the swap signature: there is no image to resume (none was written, or it was consumed).',
  BAD_SIGNATURE: 'Sector 0 holds neither the swap nor the image signature, or the image signature points nowhere sensible.',
  TRUNCATED: 'The file is shorter than the header, metadata or data it claims to hold.',
  BAD_MAGIC: 'There is no image header where the signature points.',
  UNSUPPORTED_VERSION: 'The header has a format version this build cannot read.',
  BAD_HEADER_CRC: 'The header does not match its own CRC.',
  SIGNATURE_MISMATCH: 'The header is intact but is not the one the signature block recorded (stale or foreign header).',
  BAD_METADATA: 'The header describes impossible regions or counts, or the metadata (PFNs and page CRCs) is corrupt, out of order or out of range.',
  WRONG_BUILD: 'The image was written by another build of the guest kernel.',
  WRONG_RAM_SIZE: 'The image was written by a guest with another RAM size.',
  BAD_PAGE_CRC: 'A data page does not match the CRC recorded in the metadata.',
  NOT_A_SWAP_DEVICE: 'The file exists and is not a swap device: it is left alone.',
  DEVICE_TOO_SMALL: 'The swap device cannot hold what was asked for.',
  INCOMPLETE_IMAGE: 'commit() was called before every page of the image was written.',
  WRITER_CLOSED: 'The writer was used after commit() or after a failed write.',
} as const;

export type ImageErrorCode = keyof typeof IMAGE_ERROR_CODES;

/** The facts an ImageError carries besides its code. */
export interface ImageErrorFacts {
  /** The swap device or image file. */
  readonly path: string;
  /** Byte offset in the file of the thing that is wrong. */
  readonly offset?: number;
  /** Page index in the image (position in the metadata). */
  readonly index?: number;
  /** Page frame number of that page. */
  readonly pfn?: number;
  /** What it should be: the stored CRC, the running build id, the size needed... */
  readonly expected?: number | string;
  /** What it is: the computed CRC, the image's build id, the size found... */
  readonly actual?: number | string;
  /** How many things are wrong (bad pages, missing pages). */
  readonly count?: number;
}

export class ImageError extends HiberlabError<ImageErrorCode, ImageErrorFacts> {
  readonly path: string;
  readonly offset: number | undefined;
  readonly index: number | undefined;
  readonly pfn: number | undefined;
  readonly expected: number | string | undefined;
  readonly actual: number | string | undefined;
  readonly count: number | undefined;

  constructor(code: ImageErrorCode, message: string, facts: ImageErrorFacts) {
    super(code, message, facts);
    this.path = facts.path;
    this.offset = facts.offset;
    this.index = facts.index;
    this.pfn = facts.pfn;
    this.expected = facts.expected;
    this.actual = facts.actual;
    this.count = facts.count;
  }
}

// ---------------------------------------------------------------------------
// Formatting for messages: src/units.ts.
export { bytesText, hex, hex32, mibText } from '../units.ts';

/** A build id shortened for a message: the first 12 hex digits. */
export function shortId(hexId: string): string {
  return hexId.length > 12 ? `${hexId.slice(0, 12)}…` : hexId;
}
