/**
 * Keeps docs/ABI.md's generated tables equal to src/abi.ts (the prose around them is
 * hand-written). `npm run build:guest` rewrites the section; test/abi.test.ts checks it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderAbiMarkdown } from './abi.ts';

export const ABI_DOC_BEGIN = '<!-- generated from src/abi.ts: begin -->';
export const ABI_DOC_END = '<!-- generated from src/abi.ts: end -->';

/** The generated section of the document text, or undefined if the markers are missing. */
export function abiDocSection(text: string): string | undefined {
  const a = text.indexOf(ABI_DOC_BEGIN);
  const b = text.indexOf(ABI_DOC_END);
  if (a < 0 || b < a) return undefined;
  return text.slice(a + ABI_DOC_BEGIN.length, b).trim();
}

/** Rewrites the generated section of the file at `path`. */
export function updateAbiDoc(path: string): void {
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(ABI_DOC_BEGIN);
  const b = text.indexOf(ABI_DOC_END);
  if (a < 0 || b < a) throw new Error(`${path} has no generated-section markers`);
  writeFileSync(path, `${text.slice(0, a + ABI_DOC_BEGIN.length)}\n\n${renderAbiMarkdown()}\n${text.slice(b)}`);
}
