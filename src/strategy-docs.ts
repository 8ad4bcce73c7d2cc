/**
 * Keeps docs/REPORT.md's tables of the strategies' options and statistics equal to their
 * declarations (the prose around them is hand-written); test/declarations.test.ts
 * checks it, `npx tsx src/strategy-docs.ts` rewrites it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultText, kebab, type OptionSpecs, type StatSpecs } from './declarations.ts';
import { RESTORE_STRATEGIES, SAVE_STRATEGIES } from './strategies.ts';

export const STRATEGY_DOC_BEGIN = '<!-- generated from the strategies\' declarations: begin -->';
export const STRATEGY_DOC_END = '<!-- generated from the strategies\' declarations: end -->';

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The markdown: per strategy, its origin, its options (with their CLI flags) and its statistics. */
export function renderStrategyMarkdown(): string {
  const out: string[] = [];
  const one = (kind: string, s: { name: string; description: string; origin: string; options: OptionSpecs; stats: StatSpecs }) => {
    out.push(`### ${kind} \`${s.name}\``, '', `${s.description}. From: ${s.origin}.`, '');
    const options = Object.entries(s.options);
    if (options.length) {
      out.push('| option | flag | type | default | meaning |', '|---|---|---|---|---|');
      for (const [name, spec] of options) {
        const flag = spec.kind === 'boolean' ? (spec.default === true ? `--no-${kebab(name)}` : `--${kebab(name)}`) : `--${kebab(name)} <n>`;
        const type = spec.kind === 'integer' ? `integer${spec.min !== undefined ? ` ≥ ${spec.min}` : ''}${spec.unit ? ` (${spec.unit})` : ''}` : 'boolean';
        out.push(`| \`${name}\` | \`${flag}\` | ${type} | ${cell(defaultText(spec) ?? '-')} | ${cell(spec.help)} |`);
      }
      out.push('');
    } else {
      out.push('No options.', '');
    }
    const stats = Object.entries(s.stats);
    if (stats.length) {
      out.push('| statistic | kind | also known as | meaning |', '|---|---|---|---|');
      for (const [name, spec] of stats) out.push(`| \`${name}\` | ${spec.kind} | ${cell(spec.aka ?? '-')} | ${cell(spec.help)} |`);
      out.push('');
    }
  };
  for (const s of SAVE_STRATEGIES.values()) one('save', s);
  for (const s of RESTORE_STRATEGIES.values()) one('restore', s);
  return out.join('\n').trim();
}

/** The generated section of the document text, or undefined if the markers are missing. */
export function strategyDocSection(text: string): string | undefined {
  const a = text.indexOf(STRATEGY_DOC_BEGIN);
  const b = text.indexOf(STRATEGY_DOC_END);
  if (a < 0 || b < a) return undefined;
  return text.slice(a + STRATEGY_DOC_BEGIN.length, b).trim();
}

/** Rewrites the generated section of the file at `path`. */
export function updateStrategyDoc(path: string): void {
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(STRATEGY_DOC_BEGIN);
  const b = text.indexOf(STRATEGY_DOC_END);
  if (a < 0 || b < a) throw new Error(`${path} has no generated-section markers`);
  writeFileSync(path, `${text.slice(0, a + STRATEGY_DOC_BEGIN.length)}\n\n${renderStrategyMarkdown()}\n\n${text.slice(b)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) updateStrategyDoc(fileURLToPath(new URL('../docs/REPORT.md', import.meta.url)));
