/**
 * The registry of save and restore strategies, by name. New algorithms register here
 * and are then available to the CLI, the experiment runner and the benchmarks.
 */
import { bitmapPbe } from './restore/bitmap-pbe.ts';
import type { RestoreStrategy } from './restore/strategy.ts';
import type { SaveStrategy } from './save/strategy.ts';
import { cow, type CowOptions } from './save/cow.ts';
import { swsusp } from './save/swsusp.ts';
import { wpFull, type WpFullOptions } from './save/wp-full.ts';

export const SAVE_STRATEGIES: ReadonlyMap<string, SaveStrategy> = new Map(
  [swsusp, wpFull(), cow()].map((s) => [s.name, s] as const),
);
export const RESTORE_STRATEGIES: ReadonlyMap<string, RestoreStrategy> = new Map([[bitmapPbe.name, bitmapPbe]]);

export class UnknownStrategyError extends Error {}

/** Options of the save strategies that take any (wp-full, cow); ignored by the others. */
export type SaveStrategyOptions = WpFullOptions & CowOptions;

/** The save strategy `name`, configured with `options` when it takes options. */
export function saveStrategy(name: string, options?: SaveStrategyOptions): SaveStrategy {
  if (options && name === 'wp-full') return wpFull(options);
  if (options && name === 'cow') return cow(options);
  const s = SAVE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError(`unknown save strategy "${name}" (known: ${[...SAVE_STRATEGIES.keys()].join(', ')})`);
  return s;
}

export function restoreStrategy(name: string): RestoreStrategy {
  const s = RESTORE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError(`unknown restore strategy "${name}" (known: ${[...RESTORE_STRATEGIES.keys()].join(', ')})`);
  return s;
}
