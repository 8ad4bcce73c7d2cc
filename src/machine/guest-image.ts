/**
 * The built guest kernel: where it lives, how it was built, and whether it is
 * still the build of the sources in `guest/`.
 *
 * `npm run build:guest` (harness/build-guest.ts) compiles `guest/` with
 * GUEST_CFLAGS and GUEST_LDFLAGS into `images/guest.elf` and writes
 * `images/manifest.json`:
 *
 *   sourceHash  guestSourceHash(guest/, guestBuildFlags())
 *   elfSha256   sha256 of guest.elf, also its build id
 *   flags       guestBuildFlags()
 *   gcc, ld     first line of `--version` of the tools that built it
 *   abiVersion  ABI_VERSION of src/abi.ts at build time
 *
 * The build is reproducible (no timestamps, no absolute paths), so the same
 * sources, flags and tools give a byte-identical ELF.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HiberlabError } from '../errors.ts';
import { packagePath } from '../package-root.ts';
import type { GuestImageRef } from './machine.ts';

/** Stands for the absolute path of guest/ in -ffile-prefix-map, so the recorded flags do not depend on the checkout. */
export const GUEST_DIR_PLACEHOLDER = '<guest>';

/** Compiler flags for every guest .c and .S file. */
export const GUEST_CFLAGS: readonly string[] = [
  '-m32', '-ffreestanding', '-fno-pic', '-fno-pie', '-fno-stack-protector', '-nostdlib',
  '-mgeneral-regs-only', '-O2', '-Wall', '-Wextra', '-Werror', '-fno-asynchronous-unwind-tables',
  `-ffile-prefix-map=${GUEST_DIR_PLACEHOLDER}=.`,
];

/** Linker flags (the script path is relative to guest/). */
export const GUEST_LDFLAGS: readonly string[] = ['-m', 'elf_i386', '-T', 'linker.ld', '--build-id=none'];

/** The root of the hiberlab package. */
export { PACKAGE_ROOT } from '../package-root.ts';
/** The guest sources. */
export const GUEST_DIR: string = packagePath('guest/');
/** The default guest image. */
export const DEFAULT_GUEST_IMAGE: string = packagePath('images/guest.elf');

/** What images/manifest.json records about a build. */
export interface GuestManifest {
  readonly sourceHash: string;
  readonly elfSha256: string;
  readonly flags: string;
  readonly gcc: string;
  readonly ld: string;
  readonly abiVersion: number;
}

export interface GuestImage {
  /** The ELF file, as handed to v86's multiboot loader. */
  readonly elf: Uint8Array;
  /** sha256 of the ELF, hex: identifies the kernel an image was saved from. */
  readonly buildId: string;
  readonly manifest: GuestManifest;
}

export interface GuestFreshness {
  readonly fresh: boolean;
  /** Hash of the sources in guest/ now (what a fresh build would record). */
  readonly expected: string;
  /** sourceHash recorded in the manifest ('' if there is none). */
  readonly actual: string;
}

/** A guest image that is missing, unreadable or does not match its manifest. */
export class GuestImageError extends HiberlabError<'GUEST_IMAGE', { path: string }> {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super('GUEST_IMAGE', `${path}: ${message}`, { path });
  }
}

/** The flags string recorded in the manifest and hashed with the sources. */
export function guestBuildFlags(): string {
  return `${GUEST_CFLAGS.join(' ')} ; ld ${GUEST_LDFLAGS.join(' ')}`;
}

/**
 * sha256 (hex) over every file in guestDir, in sorted order of relative path
 * ('/'-separated): for each file `path NUL size NUL content`, then `flags NUL flags`.
 */
export function guestSourceHash(guestDir: string, flags: string): string {
  const h = createHash('sha256');
  for (const rel of listFiles(guestDir)) {
    const content = readFileSync(join(guestDir, rel));
    h.update(`${rel}\0${content.length}\0`);
    h.update(content);
  }
  h.update(`flags\0${flags}`);
  return h.digest('hex');
}

/** Read a guest ELF and the manifest.json next to it; throws GuestImageError if either is missing or they disagree. */
export function loadGuestImage(path: string = DEFAULT_GUEST_IMAGE): GuestImage {
  if (!existsSync(path)) throw new GuestImageError('no guest image (run `npm run build:guest`)', path);
  const elf = new Uint8Array(readFileSync(path));
  const buildId = sha256Hex(elf);
  const manifest = readManifest(join(dirname(path), 'manifest.json'));
  if (manifest.elfSha256 !== buildId) {
    throw new GuestImageError(`sha256 ${buildId} does not match the manifest's elfSha256 ${manifest.elfSha256}`, path);
  }
  return { elf, buildId, manifest };
}

/**
 * A kernel of one's own: any multiboot ELF that implements the hypercall ABI (docs/ABI.md,
 * guest/abi.h), by path. Its build id is its sha256; no manifest is needed.
 */
export function kernelImage(path: string): GuestImageRef {
  if (!existsSync(path)) throw new GuestImageError('no such kernel', path);
  const elf = new Uint8Array(readFileSync(path));
  if (elf.length < 4 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) throw new GuestImageError('not an ELF file', path);
  return { elf, buildId: sha256Hex(elf) };
}

/** Compare the default image's manifest with a fresh hash of guest/ and the current build flags. */
export function checkGuestImageFresh(): GuestFreshness {
  const expected = guestSourceHash(GUEST_DIR, guestBuildFlags());
  const manifestPath = join(dirname(DEFAULT_GUEST_IMAGE), 'manifest.json');
  let actual = '';
  try {
    actual = readManifest(manifestPath).sourceHash;
  } catch {
    actual = '';
  }
  return { fresh: actual === expected, expected, actual };
}

/** sha256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readManifest(path: string): GuestManifest {
  if (!existsSync(path)) throw new GuestImageError('no manifest (run `npm run build:guest`)', path);
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new GuestImageError(`not JSON: ${(e as Error).message}`, path);
  }
  const r = m as Record<string, unknown>;
  for (const key of ['sourceHash', 'elfSha256', 'flags', 'gcc', 'ld'] as const) {
    if (typeof r[key] !== 'string') throw new GuestImageError(`field ${key} missing or not a string`, path);
  }
  if (typeof r.abiVersion !== 'number') throw new GuestImageError('field abiVersion missing or not a number', path);
  return m as GuestManifest;
}

/** Every file under dir, relative, '/'-separated, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}
