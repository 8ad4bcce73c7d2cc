/**
 * The registry of save and restore strategies, by name. The built-in algorithms are
 * registered here, one line each; a strategy of your own registers with
 * registerSaveStrategy / registerRestoreStrategy and is then available to runCycle,
 * the CLI's --save/--restore, `hiberlab compare` and the benchmarks.
 */
import { HiberlabError } from './errors.ts';
import type { OptionSpecs, StatSpecs } from './declarations.ts';
import { bitmapPbe } from './restore/bitmap-pbe.ts';
import { eatUnsafe } from './restore/eat-unsafe.ts';
import { oneShot } from './restore/one-shot.ts';
import { reserved } from './restore/reserved.ts';
import { compareOnLoad } from './restore/compare-on-load.ts';
import type { RestoreStrategy } from './restore/strategy.ts';
import { cow } from './save/cow.ts';
import { twoPageset } from './save/two-pageset.ts';
import { suspendModule } from './save/suspend-module.ts';
import type { SaveStrategy } from './save/strategy.ts';
import { swsusp } from './save/swsusp.ts';
import { wpFull } from './save/wp-full.ts';

type AnySave = SaveStrategy<OptionSpecs, StatSpecs>;
type AnyRestore = RestoreStrategy<OptionSpecs, StatSpecs>;

const saves = new Map<string, AnySave>();
const restores = new Map<string, AnyRestore>();

/** Every save strategy by name, in registration order. */
export const SAVE_STRATEGIES: ReadonlyMap<string, AnySave> = saves;
/** Every restore strategy by name, in registration order. */
export const RESTORE_STRATEGIES: ReadonlyMap<string, AnyRestore> = restores;

export class UnknownStrategyError extends HiberlabError<'UNKNOWN_STRATEGY', { name: string; known: string[] }> {
  constructor(kind: 'save' | 'restore', name: string, known: string[]) {
    super('UNKNOWN_STRATEGY', `unknown ${kind} strategy "${name}" (known: ${known.join(', ')})`, { name, known });
  }
}

/** Makes a save strategy available by its name. A name already taken is refused. */
export function registerSaveStrategy<O extends OptionSpecs, S extends StatSpecs>(strategy: SaveStrategy<O, S>): void {
  register(saves, 'save', strategy as unknown as AnySave);
}

/** Makes a restore strategy available by its name. A name already taken is refused. */
export function registerRestoreStrategy<O extends OptionSpecs, S extends StatSpecs>(strategy: RestoreStrategy<O, S>): void {
  register(restores, 'restore', strategy as unknown as AnyRestore);
}

/** Removes a strategy registered before (for tests that register strategies of their own). */
export function unregisterStrategy(kind: 'save' | 'restore', name: string): boolean {
  return (kind === 'save' ? saves : restores).delete(name);
}

export function saveStrategy(name: string): AnySave {
  const s = saves.get(name);
  if (!s) throw new UnknownStrategyError('save', name, [...saves.keys()]);
  return s;
}

export function restoreStrategy(name: string): AnyRestore {
  const s = restores.get(name);
  if (!s) throw new UnknownStrategyError('restore', name, [...restores.keys()]);
  return s;
}

function register<T extends { name: string }>(into: Map<string, T>, kind: string, strategy: T): void {
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(strategy.name)) throw new RangeError(`a ${kind} strategy's name is 1 to 32 lower-case letters, digits and dashes, got "${strategy.name}"`);
  if (into.has(strategy.name)) throw new RangeError(`a ${kind} strategy named "${strategy.name}" is registered already`);
  into.set(strategy.name, strategy);
}

// The built-in strategies.
registerSaveStrategy(swsusp);
registerSaveStrategy(wpFull);
registerSaveStrategy(cow);
registerSaveStrategy(twoPageset);
registerSaveStrategy(suspendModule);
registerRestoreStrategy(bitmapPbe);
registerRestoreStrategy(eatUnsafe);
registerRestoreStrategy(oneShot);
registerRestoreStrategy(reserved);
registerRestoreStrategy(compareOnLoad);
