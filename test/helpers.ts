/**
 * Shared pieces of the integration tests: the guest image, temporary swap devices,
 * file hashes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import tmp from 'tmp';
import { afterAll } from 'vitest';
import { loadGuestImage } from '../src/machine/guest-image.ts';
import type { GuestImageRef } from '../src/machine/machine.ts';

export const MiB = 1024 * 1024;

let image: GuestImageRef | undefined;
export function guestImage(): GuestImageRef {
  image ??= loadGuestImage();
  return image;
}

const made: string[] = [];
/** A fresh temporary path for a swap device, removed after the test file. */
export function tempSwapPath(label = 'swap'): string {
  const p = tmp.tmpNameSync({ prefix: `hiberlab-test-${label}-`, postfix: '.swap' });
  made.push(p);
  return p;
}

afterAll(() => {
  for (const p of made.splice(0)) rmSync(p, { force: true });
});

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
