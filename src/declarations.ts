/**
 * What a strategy declares about itself besides its code: its options (type, default,
 * range, help text) and its statistics (kind, meaning, the name QEMU's migration
 * statistics or CRIU's stats give the same thing). The CLI makes its flags from the
 * options, the report and the summaries print the statistics by their declarations,
 * the bench compares them, and docs/REPORT.md lists both (a test keeps it in step).
 */
import { HiberlabError } from './errors.ts';

export interface IntegerOption {
  readonly kind: 'integer';
  readonly help: string;
  /** The value when none is given; without one the strategy decides (say how in defaultText). */
  readonly default?: number;
  /** How the default reads in help texts when it is not a plain number ("5 % of RAM"). */
  readonly defaultText?: string;
  readonly min?: number;
  readonly max?: number;
  /** What one unit is ("pages", "KiB per guest ms"): for help texts. */
  readonly unit?: string;
}

export interface BooleanOption {
  readonly kind: 'boolean';
  readonly help: string;
  readonly default?: boolean;
}

export type OptionSpec = IntegerOption | BooleanOption;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The option values a strategy gets: every declared option, its default filled in. */
export type OptionValues<S extends OptionSpecs> = {
  readonly [K in keyof S]: S[K] extends BooleanOption ? boolean : S[K] extends { readonly default: number } ? number : number | undefined;
};

/** Option values as a caller gives them (by name; checked against the declaration). */
export type GivenOptions = Readonly<Record<string, number | boolean | undefined>>;

export class BadOptionError extends HiberlabError<'BAD_OPTION', { owner: string; option: string }> {
  constructor(owner: string, option: string, message: string) {
    super('BAD_OPTION', `${owner}: ${message}`, { owner, option });
  }
}

/** Declares a strategy's options (identity, for type inference). */
export function declareOptions<const S extends OptionSpecs>(specs: S): S {
  return specs;
}

/**
 * The values for `specs` from what was `given`: defaults filled in, every value checked
 * (type, whole number, range). An option the strategy does not declare is refused with
 * the names it does know.
 */
export function resolveOptions<S extends OptionSpecs>(owner: string, specs: S, given: GivenOptions = {}): OptionValues<S> {
  const out: Record<string, number | boolean | undefined> = {};
  for (const name of Object.keys(given)) {
    if (given[name] === undefined) continue;
    if (!(name in specs)) {
      const known = Object.keys(specs);
      throw new BadOptionError(owner, name, `no option "${name}" (${known.length ? `its options: ${known.join(', ')}` : 'it takes no options'})`);
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    const value = given[name] ?? spec.default;
    if (value === undefined) {
      out[name] = undefined;
      continue;
    }
    if (spec.kind === 'boolean') {
      if (typeof value !== 'boolean') throw new BadOptionError(owner, name, `option ${name} must be true or false, got ${String(value)}`);
    } else {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new BadOptionError(owner, name, `option ${name} must be a whole number, got ${String(value)}`);
      if (spec.min !== undefined && value < spec.min) throw new BadOptionError(owner, name, `option ${name} must be at least ${spec.min}, got ${value}`);
      if (spec.max !== undefined && value > spec.max) throw new BadOptionError(owner, name, `option ${name} must be at most ${spec.max}, got ${value}`);
    }
    out[name] = value;
  }
  return out as OptionValues<S>;
}

/** The option's default as a help text shows it. */
export function defaultText(spec: OptionSpec): string | undefined {
  if (spec.kind === 'integer' && spec.defaultText) return spec.defaultText;
  return spec.default === undefined ? undefined : String(spec.default);
}

/** A counter or a list a strategy reports. */
export type StatKind = 'count' | 'pages' | 'ticks' | 'bytes' | 'ms' | 'text' | 'rounds';

export interface StatSpec {
  readonly kind: StatKind;
  readonly help: string;
  /** The name QEMU's migration statistics or CRIU's stats give the same thing, if any. */
  readonly aka?: string;
}

export type StatSpecs = Readonly<Record<string, StatSpec>>;

/** One pre-copy round (a 'rounds' statistic). */
export interface PrecopyRound {
  readonly round: number;
  /** Pages written in this round (round 0 = the full pass). */
  readonly pagesWritten: number;
  /** Pages that were dirty again when the round ended. */
  readonly dirtyAfter: number;
  /** Guest timer ticks the round took under the I/O model. */
  readonly ticks: number;
}

export type StatValue = number | string | readonly PrecopyRound[];

/** A strategy's statistics, by the names it declared. */
export type StatValues<S extends StatSpecs> = {
  readonly [K in keyof S]?: S[K]['kind'] extends 'rounds' ? readonly PrecopyRound[] : S[K]['kind'] extends 'text' ? string : number;
};

/** Declares a strategy's statistics (identity, for type inference). */
export function declareStats<const S extends StatSpecs>(specs: S): S {
  return specs;
}

/** A statistic's value as a person reads it. */
export function formatStat(spec: StatSpec, value: StatValue | undefined): string {
  if (value === undefined) return '-';
  if (Array.isArray(value)) return (value as readonly PrecopyRound[]).map((r) => `${r.round}: ${r.pagesWritten} written, ${r.dirtyAfter} dirty after`).join('; ') || 'none';
  if (typeof value === 'string') return value;
  switch (spec.kind) {
    case 'ms':
      return `${(value as number).toFixed(1)} ms`;
    case 'bytes':
      return `${value} bytes`;
    case 'pages':
      return `${value} pages`;
    case 'ticks':
      return `${value} ticks`;
    default:
      return String(value);
  }
}

/** camelCase → kebab-case (option names → CLI flags). */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
