import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderAbiHeader, renderAbiMarkdown, STRUCTS, HYPERCALLS, PM_COMMANDS, OWNERS } from '../src/abi.ts';
import { abiDocSection } from '../src/abi-docs.ts';
import { renderImageFormatHeader } from '../src/image/layout.ts';

describe('the hypercall ABI table', () => {
  it('guest/abi.h is exactly what src/abi.ts generates', () => {
    expect(readFileSync('guest/abi.h', 'utf8')).toBe(renderAbiHeader());
  });

  it('guest/image_format.h is exactly what src/image/layout.ts generates (the image format for guest code)', () => {
    expect(readFileSync('guest/image_format.h', 'utf8')).toBe(renderImageFormatHeader());
  });

  it('docs/ABI.md carries exactly the generated tables', () => {
    expect(abiDocSection(readFileSync('docs/ABI.md', 'utf8'))).toBe(renderAbiMarkdown().trim());
  });

  it('numbers are unique within each table', () => {
    for (const table of [HYPERCALLS, PM_COMMANDS, OWNERS]) {
      const values = Object.values(table).map((e) => e.value);
      expect(new Set(values).size).toBe(values.length);
    }
  });

  it('structure fields are packed u32s in order; a PBE is Linux\'s three words', () => {
    for (const s of Object.values(STRUCTS)) {
      let offset = 0;
      for (const f of s.fields) {
        expect(f.offset).toBe(offset);
        offset += f.size;
      }
      expect(s.size).toBe(offset);
    }
    expect(STRUCTS.pbe.size).toBe(12);
  });
});
