/**
 * The registry of save and restore strategies, by name. New algorithms register here
 * and are then available to the CLI, the experiment runner and the benchmarks.
 */
import { bitmapPbe } from './restore/bitmap-pbe.ts';
import type { RestoreStrategy } from './restore/strategy.ts';
import type { SaveStrategy } from './save/strategy.ts';
import { swsusp } from './save/swsusp.ts';

export const SAVE_STRATEGIES: ReadonlyMap<string, SaveStrategy> = new Map([[swsusp.name, swsusp]]);
export const RESTORE_STRATEGIES: ReadonlyMap<string, RestoreStrategy> = new Map([[bitmapPbe.name, bitmapPbe]]);

export class UnknownStrategyError extends Error {}

export function saveStrategy(name: string): SaveStrategy {
  const s = SAVE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError(`unknown save strategy "${name}" (known: ${[...SAVE_STRATEGIES.keys()].join(', ')})`);
  return s;
}

export function restoreStrategy(name: string): RestoreStrategy {
  const s = RESTORE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError(`unknown restore strategy "${name}" (known: ${[...RESTORE_STRATEGIES.keys()].join(', ')})`);
  return s;
}
