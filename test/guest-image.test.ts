import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ABI_VERSION } from '../src/abi.ts';
import { checkGuestImageFresh, loadGuestImage } from '../src/machine/guest-image.ts';

describe('the committed guest image', () => {
  it('was built from the guest/ sources as they are now (else: npm run build:guest)', () => {
    const { fresh, expected, actual } = checkGuestImageFresh();
    expect(actual, 'images/manifest.json is stale: run npm run build:guest and commit images/').toBe(expected);
    expect(fresh).toBe(true);
  });

  it('is the ELF the manifest names, built for the current ABI', () => {
    const img = loadGuestImage();
    const manifest = JSON.parse(readFileSync('images/manifest.json', 'utf8'));
    expect(img.buildId).toBe(manifest.elfSha256);
    expect(manifest.abiVersion).toBe(ABI_VERSION);
    expect(Buffer.from(img.elf.subarray(0, 4)).toString('latin1')).toBe('\x7fELF');
  });
});
