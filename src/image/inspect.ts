/**
 * inspectImage: what is on a swap device, for `hiberlab inspect FILE [--json]`.
 *
 * It runs the validation steps of validate.ts (all but the build and RAM expectations,
 * which need a running guest) and reports what each found instead of throwing: a bad
 * header, bad metadata or bad pages are findings. It throws only when the file cannot
 * be opened or read. The result is plain JSON-able data.
 */

import { ImageError, bytesText, hex, hex32, mibText, type ImageErrorCode } from './errors.ts';
import { COMPRESSION, FORMAT_VERSION, IMAGE_MAGIC, PAGE_SIZE, decodeHeader, toHex, type ImageHeader, type ImageStats, type SignatureKind } from './layout.ts';
import { SwapDevice } from './swap-device.ts';
import {
  DEFAULT_CHUNK_BYTES, checkHeader, checkHeaderLimits, checkRegionsInFile, checkSignature, pageCrcError, readHeaderPage, readMetadata, scanPages,
} from './validate.ts';

/** 'skipped': not checked, because an earlier check failed or there is no image. */
export type CheckStatus = 'ok' | 'bad' | 'skipped';

export interface ImageInspection {
  readonly path: string;
  readonly fileBytes: number;
  readonly signature: {
    readonly kind: SignatureKind;
    readonly headerOffset?: number;
    readonly headerCrc?: string;
    readonly deviceBytes?: number;
  };
  /** Present when a header of a known version was found (even if its CRC is bad: see checks.header). */
  readonly header?: InspectedHeader;
  readonly checks: {
    readonly header: CheckStatus;
    readonly metadata: CheckStatus;
    readonly pages: CheckStatus;
    /** Pages whose CRC does not match (0 unless pages were checked). */
    readonly badPages: number;
    readonly firstBadPage?: { readonly index: number; readonly pfn: string; readonly offset: number; readonly expected: string; readonly actual: string };
  };
  /** The first problem of each failed step, in validation order. */
  readonly problems: ReadonlyArray<{ readonly code: ImageErrorCode; readonly message: string }>;
  /** An image signature and every check ok (the build and RAM size are not checked here). */
  readonly resumable: boolean;
}

export interface InspectedHeader {
  readonly version: number;
  readonly buildId: string;
  readonly ramBytes: number;
  readonly frameCount: number;
  readonly pageCount: number;
  readonly strategy: string;
  readonly stats: ImageStats;
  readonly contextAddress: string;
  readonly savedContext: string;
  readonly metadataOffset: number;
  readonly metadataBytes: number;
  readonly dataOffset: number;
  readonly dataBytes: number;
  /** 0: none, 1: LZ4 (docs/IMAGE-FORMAT.md). */
  readonly compression: number;
  readonly imageBytes: number;
  readonly headerCrc: string;
  readonly metadataCrc: string;
  /** The swap map: where the image's sectors lie, [first sector, sectors] each, in order; empty: as its offsets say. */
  readonly extents: ReadonlyArray<readonly [number, number]>;
}

export interface InspectOptions {
  /** Bytes read at a time while checking page CRCs. Default: 1 MiB. */
  readonly chunkBytes?: number;
}

/** Reports what is on `path`; throws only if it cannot be opened or read. */
export function inspectImage(path: string, options: InspectOptions = {}): ImageInspection {
  const dev = SwapDevice.open(path);
  try {
    return inspectDevice(dev, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  } finally {
    dev.close();
  }
}

/** The human-readable form of an inspection (what `hiberlab inspect` prints without --json). */
export function formatInspection(report: ImageInspection): string {
  const width = 80;
  /** "  key         words words …", broken before `width` with the continuation under the first word. */
  const field = (key: string, text: string): string[] => {
    const head = `  ${key.padEnd(12)}`;
    const out: string[] = [];
    let line = head;
    for (const word of text.split(' ')) {
      if (line.length > head.length && line.length + 1 + word.length > width) {
        out.push(line);
        line = ' '.repeat(head.length) + word;
      } else {
        line = line.length > head.length ? `${line} ${word}` : line + word;
      }
    }
    out.push(line);
    return out;
  };
  const lines: string[] = [`${report.path}: ${bytesText(report.fileBytes)}`];
  const sig = report.signature;
  lines.push(`  signature   ${sig.kind}${sig.kind === 'image' ? ` (header at ${sig.headerOffset}, CRC ${sig.headerCrc})` : ''}`);
  const h = report.header;
  if (h) {
    lines.push(
      `  version     ${h.version}`,
      `  build       ${h.buildId.slice(0, 16)}… (sha256 of the guest ELF)`,
      `  RAM         ${mibText(h.ramBytes)} (${h.frameCount} frames)`,
      ...field('pages', `${h.pageCount} (${mibText(h.dataBytes)} of data; the image takes ${bytesText(h.imageBytes)})`),
      ...field('compression', h.compression === COMPRESSION.LZ4
        ? `LZ4: ${mibText(h.pageCount * PAGE_SIZE)} of pages stored in ${mibText(h.dataBytes)} (${h.pageCount ? ((100 * h.dataBytes) / (h.pageCount * PAGE_SIZE)).toFixed(1) : '0.0'} %)`
        : h.compression === COMPRESSION.NONE ? 'none' : `unknown (${h.compression})`),
      `  strategy    ${h.strategy}`,
      ...field('stats', Object.entries(h.stats).map(([k, v]) => `${k}=${v}`).join(' ')),
      `  context     at ${h.contextAddress}`,
      `  placement   ${h.extents.length === 0 ? 'contiguous' : `${h.extents.length} extents (a swap map: the image's sectors are scattered)`}`,
    );
  }
  const c = report.checks;
  lines.push(...field('checks', `header ${c.header}, metadata ${c.metadata}, pages ${c.pages}${c.badPages > 0 ? ` (${c.badPages} bad, first: page ${c.firstBadPage?.index} PFN ${c.firstBadPage?.pfn})` : ''}`));
  for (const p of report.problems) lines.push(...field(p.code, p.message));
  lines.push(`  resumable   ${report.resumable ? 'yes' : 'no'}`);
  return lines.join('\n');
}

function inspectDevice(dev: SwapDevice, chunkBytes: number): ImageInspection {
  const fileBytes = dev.bytes;
  const sig = dev.readSignature();
  const problems: Array<{ code: ImageErrorCode; message: string }> = [];
  const checks = { header: 'skipped' as CheckStatus, metadata: 'skipped' as CheckStatus, pages: 'skipped' as CheckStatus, badPages: 0 };
  let firstBadPage: ImageInspection['checks']['firstBadPage'];
  let header: ImageHeader | undefined;
  let headerShown: ImageHeader | undefined;

  /** Runs a step; an ImageError becomes a problem, anything else (I/O) propagates. */
  const attempt = <T>(step: () => T): T | undefined => {
    try {
      return step();
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
      problems.push({ code: err.code, message: err.message });
      return undefined;
    }
  };

  const located = sig.kind === 'swap' ? undefined : attempt(() => checkSignature(sig, dev.path));
  if (located) {
    const page = attempt(() => readHeaderPage(dev, located.headerOffset, fileBytes));
    if (page) {
      header = attempt(() => {
        const checked = checkHeader(page, located.headerOffset, located.headerCrc, dev.path);
        checkHeaderLimits(checked, located.headerOffset, dev.path);
        return checked;
      });
      headerShown = header ?? decodedIfReadable(page);
    }
    checks.header = header ? 'ok' : 'bad';
  }
  if (header) {
    const h = header;
    const inFile = attempt(() => { checkRegionsInFile(h, fileBytes, dev.path); return true; }) ?? false;
    dev.mapImage(h.extents);
    const metadata = inFile ? attempt(() => readMetadata(dev, h)) : undefined;
    checks.metadata = inFile ? (metadata ? 'ok' : 'bad') : 'skipped';
    if (metadata) {
      const scan = scanPages(dev, h, metadata.pfns, metadata.crcs, chunkBytes, metadata.packing);
      checks.pages = scan.badPages === 0 ? 'ok' : 'bad';
      checks.badPages = scan.badPages;
      if (scan.first) {
        const { index, expected, actual } = scan.first;
        firstBadPage = { index, pfn: hex(metadata.pfns[index]!), offset: h.dataOffset + (metadata.packing ? metadata.packing.offsets[index]! : index * PAGE_SIZE), expected: hex32(expected), actual: hex32(actual) };
        problems.push({ code: 'BAD_PAGE_CRC', message: pageCrcError(dev.path, h, metadata.pfns, scan, metadata.packing).message });
      }
    }
  }

  const resumable = sig.kind === 'image' && checks.header === 'ok' && checks.metadata === 'ok' && checks.pages === 'ok';
  return {
    path: dev.path,
    fileBytes,
    signature: {
      kind: sig.kind,
      ...(sig.headerOffset === undefined ? {} : { headerOffset: sig.headerOffset }),
      ...(sig.headerCrc === undefined ? {} : { headerCrc: hex32(sig.headerCrc) }),
      ...(sig.deviceBytes === undefined ? {} : { deviceBytes: sig.deviceBytes }),
    },
    ...(headerShown ? { header: describeHeader(headerShown) } : {}),
    checks: { ...checks, ...(firstBadPage ? { firstBadPage } : {}) },
    problems,
    resumable,
  };
}

/** A header that failed its checks is still shown if its magic and version are right. */
function decodedIfReadable(page: Uint8Array): ImageHeader | undefined {
  const decoded = decodeHeader(page);
  return decoded.magic === IMAGE_MAGIC && decoded.version === FORMAT_VERSION ? decoded : undefined;
}

function describeHeader(h: ImageHeader): InspectedHeader {
  return {
    version: h.version,
    buildId: h.buildId,
    ramBytes: h.ramBytes,
    frameCount: h.frameCount,
    pageCount: h.pageCount,
    strategy: h.strategy,
    stats: h.stats,
    contextAddress: hex(h.context.address),
    savedContext: toHex(h.context.bytes),
    metadataOffset: h.metadataOffset,
    metadataBytes: h.metadataBytes,
    dataOffset: h.dataOffset,
    dataBytes: h.dataBytes,
    compression: h.compression,
    imageBytes: h.dataOffset + h.dataBytes,
    headerCrc: hex32(h.headerCrc),
    metadataCrc: hex32(h.metadataCrc),
    extents: Array.from({ length: h.extents.length / 2 }, (_, i) => [h.extents[2 * i]!, h.extents[2 * i + 1]!] as const),
  };
}
