/** The fault policies, and a factory by name (for the CLI and experiment scripts). */
import type { Guest } from '../../machine/guest.ts';
import type { FaultPolicy } from '../faults.ts';
import type { WriteProtector } from '../protect.ts';
import { CopyBeforeWritePolicy, type CopyBeforeWriteOptions } from './copy-before-write.ts';
import { CountPolicy } from './count.ts';
import { DenyPolicy } from './deny.ts';
import { DirtyTrackPolicy } from './dirty-track.ts';

export { CopyBeforeWritePolicy, PoolExhaustedError, FREE_SLOT, type CopyBeforeWriteOptions } from './copy-before-write.ts';
export { CountPolicy } from './count.ts';
export { DenyPolicy, WriteDeniedError } from './deny.ts';
export { DirtyTrackPolicy } from './dirty-track.ts';

export const POLICY_NAMES = ['dirty-track', 'copy-before-write', 'deny', 'count'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface PolicyOptions extends CopyBeforeWriteOptions {}

/** A fresh policy by name; policies with bookkeeping take their frames from the guest's allocator now. */
export function policyByName(name: string, guest: Guest, protector: WriteProtector, options: PolicyOptions = {}): FaultPolicy {
  switch (name) {
    case 'dirty-track':
      return new DirtyTrackPolicy(guest, protector);
    case 'copy-before-write':
      return new CopyBeforeWritePolicy(guest, protector, options);
    case 'deny':
      return new DenyPolicy();
    case 'count':
      return new CountPolicy();
    default:
      throw new RangeError(`unknown fault policy "${name}" (known: ${POLICY_NAMES.join(', ')})`);
  }
}
