/**
 * The signature block, written and undone (swap.c: mark_swapfiles, and the reset of
 * the swap signature when the image is consumed). Each is a single sector write,
 * made durable with fdatasync, so the device holds either the old signature or the new one.
 */

import { ImageError } from './errors.ts';
import { encodeImageSignature, encodeSwapSignature } from './layout.ts';
import type { SwapDevice } from './swap-device.ts';

export interface SignatureWriteOptions {
  /** fdatasync after the write. Default: true. */
  readonly durable?: boolean;
}

/**
 * Puts the swap signature back, so the image on `dev` can never be resumed again (call it
 * once the image is consumed, or to discard it). The data stays on the device. Refuses a
 * device with an unknown signature (NOT_A_SWAP_DEVICE): it is not ours to overwrite.
 */
export function resetSignature(dev: SwapDevice, options: SignatureWriteOptions = {}): void {
  const sig = dev.readSignature();
  if (sig.kind === 'unknown') {
    throw new ImageError('NOT_A_SWAP_DEVICE', `refusing to reset the signature of ${dev.path}: it is not a swap device (sector 0 starts with ${sig.rawHex})`, { path: dev.path, offset: 0 });
  }
  dev.writeAt(encodeSwapSignature(sig.deviceBytes ?? dev.bytes), 0);
  if (options.durable ?? true) dev.syncData();
}

/**
 * Writes the image signature pointing at the header at headerOffset with headerCrc
 * (swap.c: mark_swapfiles). Only the writer calls it, after the image is durable.
 */
export function markImage(dev: SwapDevice, headerOffset: number, headerCrc: number, options: SignatureWriteOptions = {}): void {
  const sig = dev.readSignature();
  dev.writeAt(encodeImageSignature(sig.deviceBytes ?? dev.bytes, headerOffset, headerCrc), 0);
  if (options.durable ?? true) dev.syncData();
}
