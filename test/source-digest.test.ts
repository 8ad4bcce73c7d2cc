import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript of the bin, without types
import { sourceDigest } from '../bin/source-digest.mjs';

const digest = sourceDigest as (root: string) => string;

describe("the bin's digest of the sources dist/ was built from", () => {
  it('changes with any byte or name of a file under src/ or harness/ and with package.json, the tsconfig files and the TypeScript version, not with other files', () => {
    const root = mkdtempSync(join(tmpdir(), 'hiberlab-digest-'));
    try {
      mkdirSync(join(root, 'src/image'), { recursive: true });
      mkdirSync(join(root, 'harness'));
      writeFileSync(join(root, 'src/image/a.ts'), 'export const a = 1;\n');
      writeFileSync(join(root, 'harness/cli.ts'), 'export {};\n');
      const first = digest(root);
      expect(digest(root)).toBe(first);
      writeFileSync(join(root, 'README.md'), 'not a source\n');
      expect(digest(root)).toBe(first);
      writeFileSync(join(root, 'src/image/a.ts'), 'export const a = 2;\n');
      const edited = digest(root);
      expect(edited).not.toBe(first);
      writeFileSync(join(root, 'src/image/a.ts'), 'export const a = 1;\n');
      expect(digest(root)).toBe(first);
      writeFileSync(join(root, 'harness/new.ts'), '');
      const added = digest(root);
      expect(added).not.toBe(first);
      writeFileSync(join(root, 'tsconfig.build.json'), '{}\n');
      const configured = digest(root);
      expect(configured).not.toBe(added);
      // Another TypeScript compiles the same sources differently.
      mkdirSync(join(root, 'node_modules/typescript'), { recursive: true });
      writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
      const withPackage = digest(root);
      expect(withPackage).not.toBe(configured);
      writeFileSync(join(root, 'node_modules/typescript/package.json'), '{ "version": "5.0.0" }\n');
      const ts5 = digest(root);
      expect(ts5).not.toBe(withPackage);
      writeFileSync(join(root, 'node_modules/typescript/package.json'), '{ "version": "5.9.3" }\n');
      expect(digest(root)).not.toBe(ts5);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('which CLI the bin runs', () => {
  // A copy of the bin in a made-up checkout whose two CLIs say which one ran.
  const bin = new URL('../bin/', import.meta.url);
  function checkout(): string {
    const root = mkdtempSync(join(tmpdir(), 'hiberlab-bin-'));
    mkdirSync(join(root, 'bin'));
    for (const f of ['hiberlab.mjs', 'source-digest.mjs']) copyFileSync(new URL(f, bin), join(root, 'bin', f));
    symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), join(root, 'node_modules'));
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    mkdirSync(join(root, 'src'));
    mkdirSync(join(root, 'harness'));
    mkdirSync(join(root, 'dist/harness'), { recursive: true });
    writeFileSync(join(root, 'harness/cli.ts'), "export async function main(): Promise<number> { console.log('source'); return 0; }\n");
    writeFileSync(join(root, 'dist/harness/cli.js'), "export async function main() { console.log('dist'); return 0; }\n");
    writeFileSync(join(root, 'dist/sources.sha256'), `${digest(root)}\n`);
    return root;
  }
  const run = (root: string) => execFileSync(process.execPath, [join(root, 'bin/hiberlab.mjs')], { encoding: 'utf8' }).trim();

  it('runs dist/ while it was built from the sources as they are, the sources after an edit, dist/ when there are no sources', () => {
    const root = checkout();
    try {
      expect(run(root)).toBe('dist');
      writeFileSync(join(root, 'harness/cli.ts'), "export async function main(): Promise<number> { console.log('source'); return 0; }\n// edited\n");
      expect(run(root)).toBe('source');
      rmSync(join(root, 'dist/sources.sha256'));
      expect(run(root)).toBe('source');
      rmSync(join(root, 'harness/cli.ts'));
      expect(run(root)).toBe('dist');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
