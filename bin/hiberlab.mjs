#!/usr/bin/env node
// In a checkout the CLI runs from its TypeScript through tsx's loader (no build step, and
// never a stale build); an installed package has no TypeScript sources, only the
// JavaScript built into dist/ when it was packed.
import { existsSync } from 'node:fs';

const source = new URL('../harness/cli.ts', import.meta.url);
const built = new URL('../dist/harness/cli.js', import.meta.url);

async function tsxRegistered() {
  try {
    (await import('tsx/esm/api')).register();
    return true;
  } catch {
    return false; // tsx is a devDependency: not there with --omit=dev
  }
}

let cli;
if (existsSync(source) && (await tsxRegistered())) cli = source;
else if (existsSync(built)) cli = built;
else {
  console.error('hiberlab: neither tsx (to run harness/cli.ts) nor the built dist/harness/cli.js is there: run `npm install`');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv);
