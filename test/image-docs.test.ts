import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { HEADER_LAYOUT, IMAGE_ERROR_CODES, SIGNATURE_LAYOUT, type LayoutField } from '../src/image/index.ts';

const doc = fs.readFileSync(new URL('../docs/IMAGE-FORMAT.md', import.meta.url), 'utf8');

function row(f: LayoutField): string {
  return `| ${f.offset} | \`${f.name}\` | ${f.size} | ${f.type} | ${f.doc.replace(/\|/g, '\\|')} |`;
}

describe('docs/IMAGE-FORMAT.md matches src/image/layout.ts', () => {
  it('has a row with offset, size, type and meaning for every signature-block field, in order', () => {
    const rows = SIGNATURE_LAYOUT.fields.map(row);
    expect(doc).toContain(rows.join('\n'));
  });

  it('has a row with offset, size, type and meaning for every header field, in order', () => {
    const rows = HEADER_LAYOUT.fields.map(row);
    expect(doc).toContain(rows.join('\n'));
  });

  it('gives an example message for every error code', () => {
    for (const code of Object.keys(IMAGE_ERROR_CODES)) expect(doc).toMatch(new RegExp(`^\\| \`${code}\` \\| .+ \\|$`, 'm'));
  });
});
