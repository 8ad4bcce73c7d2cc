import { describe, expect, it } from 'vitest';
import { BadOptionError, declareOptions, resolveOptions } from '../src/declarations.ts';
import { readFileSync } from 'node:fs';
import { SAVE_STRATEGIES } from '../src/strategies.ts';
import { renderStrategyMarkdown, strategyDocSection } from '../src/strategy-docs.ts';

describe('strategy options come from their declarations', () => {
  const specs = declareOptions({
    rounds: { kind: 'integer', default: 2, min: 0, max: 10, help: 'rounds' },
    pool: { kind: 'integer', min: 1, help: 'pool', defaultText: '5 % of RAM' },
    measure: { kind: 'boolean', default: false, help: 'measure' },
  });

  it('fills in defaults and keeps what is given', () => {
    expect(resolveOptions('s', specs, {})).toEqual({ rounds: 2, pool: undefined, measure: false });
    expect(resolveOptions('s', specs, { rounds: 0, pool: 7, measure: true })).toEqual({ rounds: 0, pool: 7, measure: true });
  });

  it('refuses an option the strategy does not declare, a wrong type, a value out of range', () => {
    expect(() => resolveOptions('save strategy s', specs, { pol: 3 })).toThrow('save strategy s: no option "pol" (its options: rounds, pool, measure)');
    expect(() => resolveOptions('s', specs, { rounds: 1.5 })).toThrow('option rounds must be a whole number, got 1.5');
    expect(() => resolveOptions('s', specs, { rounds: 11 })).toThrow('option rounds must be at most 10, got 11');
    expect(() => resolveOptions('s', specs, { pool: 0 })).toThrow('option pool must be at least 1, got 0');
    expect(() => resolveOptions('s', specs, { measure: 1 })).toThrow('option measure must be true or false, got 1');
    expect(() => resolveOptions('s', {}, { x: 1 })).toThrow(BadOptionError);
  });

  it('every built-in save strategy declares a help text for each option and statistic', () => {
    for (const s of SAVE_STRATEGIES.values()) {
      expect(s.origin.length).toBeGreaterThan(10);
      for (const spec of [...Object.values(s.options), ...Object.values(s.stats)]) expect(spec.help.length).toBeGreaterThan(5);
    }
  });
});

describe('the docs speak from the declarations', () => {
  it('docs/REPORT.md carries exactly the generated tables of every strategy\'s options and statistics', () => {
    expect(strategyDocSection(readFileSync('docs/REPORT.md', 'utf8'))).toBe(renderStrategyMarkdown());
  });

  it('docs/ADDING-A-STRATEGY.md shows the example strategy exactly as the file the tests run', () => {
    const example = readFileSync('docs/examples/stop-and-write.ts', 'utf8').trimEnd();
    expect(readFileSync('docs/ADDING-A-STRATEGY.md', 'utf8')).toContain(`\`\`\`ts\n${example}\n\`\`\``);
  });
});
