/**
 * `npm run build:guest`: build images/guest.elf from guest/ and record the
 * build in images/manifest.json (see src/machine/guest-image.ts).
 *
 *   1. guest/abi.h <- renderAbiHeader() of src/abi.ts (generated, never edited)
 *   2. gcc GUEST_CFLAGS -c every guest/*.c and guest/*.S, run inside guest/
 *      with relative names, objects into a temporary directory
 *   3. ld GUEST_LDFLAGS -o images/guest.elf (objects in sorted order)
 *   4. images/manifest.json
 *
 * Reproducible: no timestamps, no absolute paths reach the ELF, so two
 * builds of the same sources with the same tools are byte-identical.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { dirSync } from 'tmp';
import { ABI_VERSION, renderAbiHeader } from '../src/abi.ts';
import { updateAbiDoc } from '../src/abi-docs.ts';
import { renderImageFormatHeader } from '../src/image/layout.ts';
import {
  DEFAULT_GUEST_IMAGE, GUEST_CFLAGS, GUEST_DIR, GUEST_DIR_PLACEHOLDER, GUEST_LDFLAGS,
  guestBuildFlags, guestSourceHash, sha256Hex, type GuestManifest,
} from '../src/machine/guest-image.ts';

export interface BuildGuestResult {
  readonly elfPath: string;
  readonly manifest: GuestManifest;
}

/** Build the guest image; returns where it went and its manifest. Throws execa's error if a tool fails. */
export async function buildGuest(): Promise<BuildGuestResult> {
  const guestDir = GUEST_DIR.replace(/\/$/, '');
  writeIfChanged(join(guestDir, 'abi.h'), renderAbiHeader());
  writeIfChanged(join(guestDir, 'image_format.h'), renderImageFormatHeader());
  updateAbiDoc(join(guestDir, '..', 'docs', 'ABI.md'));

  const sources = readdirSync(guestDir).filter((f) => f.endsWith('.c') || f.endsWith('.S')).sort();
  const cflags = GUEST_CFLAGS.map((f) => f.replace(GUEST_DIR_PLACEHOLDER, guestDir));
  const work = dirSync({ prefix: 'hiberlab-guest-', unsafeCleanup: true });
  try {
    // The suspend module first: a flat binary the kernel carries (smod_blob.S).
    const smodDir = join(guestDir, 'smod');
    const smodObjects: string[] = [];
    for (const src of readdirSync(smodDir).filter((f) => f.endsWith('.c') || f.endsWith('.S')).sort()) {
      const obj = join(work.name, `smod-${src.replace(/\.[cS]$/, '')}.${src.endsWith('.S') ? 'S' : 'c'}.o`);
      await execa('gcc', [...cflags, '-c', src, '-o', obj], { cwd: smodDir });
      smodObjects.push(obj);
    }
    const smodElf = join(work.name, 'smod.elf');
    const smodBin = join(work.name, 'smod.bin');
    await execa('ld', ['-m', 'elf_i386', '-T', 'smod.ld', '--build-id=none', '-o', smodElf, ...smodObjects], { cwd: smodDir });
    await execa('objcopy', ['-O', 'binary', smodElf, smodBin]);
    const objects: string[] = [];
    for (const src of sources) {
      const obj = join(work.name, `${src.replace(/\.[cS]$/, '')}.${src.endsWith('.S') ? 'S' : 'c'}.o`);
      const extra = src === 'smod_blob.S' ? [`-DSMOD_BIN="${smodBin}"`] : [];
      await execa('gcc', [...cflags, ...extra, '-c', src, '-o', obj], { cwd: guestDir });
      objects.push(obj);
    }
    const linked = join(work.name, 'guest.elf');
    await execa('ld', [...GUEST_LDFLAGS, '-o', linked, ...objects], { cwd: guestDir });

    const elf = readFileSync(linked);
    mkdirSync(join(DEFAULT_GUEST_IMAGE, '..'), { recursive: true });
    copyFileSync(linked, DEFAULT_GUEST_IMAGE);
    const flags = guestBuildFlags();
    const manifest: GuestManifest = {
      sourceHash: guestSourceHash(guestDir, flags),
      elfSha256: sha256Hex(elf),
      flags,
      gcc: await firstLine('gcc'),
      ld: await firstLine('ld'),
      abiVersion: ABI_VERSION,
    };
    writeFileSync(join(DEFAULT_GUEST_IMAGE, '..', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return { elfPath: DEFAULT_GUEST_IMAGE, manifest };
  } finally {
    work.removeCallback();
  }
}

async function firstLine(tool: string): Promise<string> {
  const { stdout } = await execa(tool, ['--version']);
  return stdout.split('\n')[0] ?? '';
}

function writeIfChanged(path: string, text: string): void {
  let old: string | undefined;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    old = undefined;
  }
  if (old !== text) writeFileSync(path, text);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { elfPath, manifest } = await buildGuest();
  console.log(`${elfPath}: ${readFileSync(elfPath).length} bytes, sha256 ${manifest.elfSha256}`);
}
