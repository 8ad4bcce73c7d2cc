/**
 * Shared pieces of the write-protection tests: a booted guest stopped in its pm loop
 * with its workload tasks frozen, so that a stream buffer is a set of pages nobody
 * writes but the probes.
 */
import { afterAll, beforeAll } from 'vitest';
import { PROBES } from '../src/abi.ts';
import { Guest, type GuestOptions } from '../src/machine/guest.ts';
import { guestImage, MiB } from './helpers.ts';

export interface Frozen {
  guest: Guest;
  /** First data page of the frozen stream task's buffer (the header page is skipped). */
  first: number;
  /** Data pages in that buffer. */
  pages: number;
}

/**
 * For a describe block: boots a frozen guest before its tests and powers it off after.
 * Read `.current` inside the tests (it is set once beforeAll has run).
 */
export function useFrozenGuest(opts: Partial<GuestOptions> = {}, then?: (f: Frozen) => void): { current: Frozen } {
  const ref = {} as { current: Frozen };
  beforeAll(async () => {
    ref.current = await bootFrozen(opts);
    then?.(ref.current);
  });
  afterAll(async () => {
    await ref.current?.guest.machine.powerOff();
  });
  return ref;
}

/** Boots a 32 MiB guest with a 1 MiB stream workload, enters the pm loop and freezes the tasks. */
export async function bootFrozen(opts: Partial<GuestOptions> = {}): Promise<Frozen> {
  const guest = await Guest.boot({ ramBytes: 32 * MiB, image: guestImage(), workload: 'stream:1M@100', seed: 5, ...opts });
  await guest.enterPm();
  await guest.pm('FREEZE');
  const t = guest.tasks().find((x) => x.kind === 'stream')!;
  return { guest, first: (t.bufBase >>> 12) + 1, pages: t.bufBytes / 4096 - 1 };
}

export type ProbeName = keyof typeof PROBES;

/** Runs one probe pattern in the pm task (it must be in its pm loop). */
export function probe(guest: Guest, pattern: ProbeName, address: number, length = 0): Promise<number> {
  return guest.pm('PROBE', PROBES[pattern].value, address, length);
}

/** The stored values of the probes (guest/pm.c). */
export const PROBE_VALUE = 0x424f5250;
