// Builds the package's JavaScript and .d.ts into dist/ (`npm run build`; npm runs it as
// `prepare` on npm pack, on git installs and on a checkout's npm install). Plain
// JavaScript, so it needs nothing but TypeScript.
//
// 1. tsc -p tsconfig.build.json: src/ and harness/ into dist/src/ and dist/harness/, the
//    sources' `./x.ts` imports rewritten to `./x.js` (rewriteRelativeImportExtensions).
// 2. page-scan.mjs (plain JavaScript, which the CRC thread starts as a worker from
//    `new URL('./page-scan.mjs', import.meta.url)`) and its types go next to crc-thread.js.
// 3. tsc leaves `./x.ts` in the .d.ts files (TypeScript 5 reads them; older TypeScript
//    and other tools do not): rewritten to `./x.js` like the JavaScript.
// 4. No relative import of a .ts file may be left in dist/.
// 5. The digest of the build's inputs (taken before compiling) goes into
//    dist/sources.sha256: in a checkout the bin runs dist/ only while the inputs still
//    have that digest (bin/source-digest.mjs).
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIGEST_FILE, files, sourceDigest } from '../bin/source-digest.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const RELATIVE_TS = /(\bfrom\s*|\bimport\s*\(\s*)(['"])(\.\.?\/[^'"]*?)\.ts\2/g;

// Taken before compiling: a source saved while tsc runs must not be recorded as built.
const digest = sourceDigest(root);
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

for (const name of ['page-scan.mjs', 'page-scan.d.mts']) copyFileSync(join(root, 'src/image', name), join(dist, 'src/image', name));

const left = [];
for (const path of files(dist)) {
  if (path.endsWith('.d.ts')) {
    const text = readFileSync(path, 'utf8');
    const rewritten = text.replace(RELATIVE_TS, '$1$2$3.js$2');
    if (rewritten !== text) writeFileSync(path, rewritten);
  } else if (/\.m?js$/.test(path)) {
    for (const m of readFileSync(path, 'utf8').matchAll(RELATIVE_TS)) left.push(`${relative(root, path)}: ${m[0]}`);
  }
}
if (left.length) {
  console.error(`build-package: relative .ts imports left in the built JavaScript:\n  ${left.join('\n  ')}`);
  process.exit(1);
}
writeFileSync(join(root, DIGEST_FILE), `${digest}\n`);
