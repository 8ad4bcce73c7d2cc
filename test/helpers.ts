/**
 * Shared pieces of the integration tests: the guest image, temporary swap devices,
 * file hashes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import tmp from 'tmp';
import { afterAll, expect } from 'vitest';
import type { CycleReport } from '../src/cycle.ts';
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

/**
 * A cycle passed, and every rule of the oracle says so on its own: the image held
 * exactly the frames in use at the atomic point, every saved page equals the oracle's
 * expected bytes, the CPU context came back, every workload verified its data.
 */
export function expectPass(r: CycleReport): void {
  expect(r.failures).toEqual([]);
  expect(r.verdict).toBe('pass');
  expect(r.resumeStatus).toBe('resumed');
  const o = r.oracle;
  expect(o.against).toBe('oracle');
  expect(o.frames!.missingPages).toEqual([]);
  expect(o.frames!.extraPages).toEqual([]);
  expect(o.memory!.differingPages).toEqual([]);
  expect(o.cpu!.differences).toEqual([]);
  expect(o.cpu!.fieldsCompared.length).toBe(22);
  expect(r.verify.length).toBe(o.tasks.expected);
  for (const v of r.verify) expect(v.badWords).toBe(0);
}
