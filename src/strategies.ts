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
import { HiberlabError } from './errors.ts';

export const SAVE_STRATEGIES: ReadonlyMap<string, SaveStrategy> = new Map(
  [swsusp, wpFull(), cow()].map((s) => [s.name, s] as const),
);
export const RESTORE_STRATEGIES: ReadonlyMap<string, RestoreStrategy> = new Map([[bitmapPbe.name, bitmapPbe]]);

export class UnknownStrategyError extends HiberlabError<'UNKNOWN_STRATEGY', { name: string; known: string[] }> {
  constructor(kind: 'save' | 'restore', name: string, known: string[]) {
    super('UNKNOWN_STRATEGY', `unknown ${kind} strategy "${name}" (known: ${known.join(', ')})`, { name, known });
  }
}

/** Options of the save strategies that take any (wp-full, cow); ignored by the others. */
export type SaveStrategyOptions = WpFullOptions & CowOptions;

/** The save strategy `name`, configured with `options` when it takes options. */
export function saveStrategy(name: string, options?: SaveStrategyOptions): SaveStrategy {
  if (options && name === 'wp-full') return wpFull(options);
  if (options && name === 'cow') return cow(options);
  const s = SAVE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError('save', name, [...SAVE_STRATEGIES.keys()]);
  return s;
}

export function restoreStrategy(name: string): RestoreStrategy {
  const s = RESTORE_STRATEGIES.get(name);
  if (!s) throw new UnknownStrategyError('restore', name, [...RESTORE_STRATEGIES.keys()]);
  return s;
}
