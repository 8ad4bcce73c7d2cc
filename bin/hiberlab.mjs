#!/usr/bin/env node
// An installed package has no TypeScript sources, only the JavaScript built into dist/
// when it was packed. A checkout runs dist/ too while it was built from the sources as
// they are now (the digest `npm run build` recorded; npm install builds it), and the
// TypeScript through tsx's loader otherwise: never a stale build, and no build step
// needed after an edit. dist/ starts 0.4 s sooner than tsx (docs/BENCHMARKS.md).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = new URL('../harness/cli.ts', import.meta.url);
const built = new URL('../dist/harness/cli.js', import.meta.url);

async function builtFromTheseSources() {
  const { DIGEST_FILE, sourceDigest } = await import('./source-digest.mjs');
  try {
    return readFileSync(new URL(`../${DIGEST_FILE}`, import.meta.url), 'utf8').trim() === sourceDigest(root);
  } catch {
    return false; // no digest: built by an older build, or not built
  }
}

async function tsxRegistered() {
  try {
    (await import('tsx/esm/api')).register();
    return true;
  } catch {
    return false; // tsx is a devDependency: not there with --omit=dev
  }
}

let cli;
if (!existsSync(source)) cli = built;
else if (existsSync(built) && (await builtFromTheseSources())) cli = built;
else if (await tsxRegistered()) cli = source;
else cli = built;
if (!existsSync(cli)) {
  console.error('hiberlab: neither tsx (to run harness/cli.ts) nor the built dist/harness/cli.js is there: run `npm install`');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv);
