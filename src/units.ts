/**
 * The units hiberlab counts in, and how they are written in messages: one page size,
 * one way to write a PFN or an address, one way to write sizes. Deterministic (no
 * locale), so messages can be compared in tests.
 */
import { CONSTANTS } from './abi.ts';

/** Bytes per frame (the guest's PAGE_SIZE, from the ABI table). */
export const PAGE_SIZE: number = CONSTANTS.PAGE_SIZE.value;

/** 0x-prefixed hex: how PFNs and addresses are written. */
export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

/** 0x-prefixed, 8 hex digits: how CRCs and register values are written. */
export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

/** 1234567 -> "1,234,567 bytes". */
export function bytesText(value: number): string {
  return `${String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ',')} bytes`;
}

/** 134217728 -> "128 MiB"; 1.5 MiB keeps its decimals. */
export function mibText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return `${Number.isInteger(mib) ? mib : Number(mib.toFixed(3))} MiB`;
}

/** Linux's swsusp_show_speed: "Wrote 31180 kbytes in 4.60 seconds (6.77 MB/s)". */
export function speedLine(verb: 'Wrote' | 'Read', bytes: number, millis: number): string {
  const kbytes = Math.round(bytes / 1024);
  const seconds = millis / 1000;
  const rate = seconds > 0 ? kbytes / 1024 / seconds : 0;
  return `${verb} ${kbytes} kbytes in ${seconds.toFixed(2)} seconds (${rate.toFixed(2)} MB/s)`;
}
