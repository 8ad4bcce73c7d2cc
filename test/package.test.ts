/**
 * hiberlab as a user gets it: `npm pack` of this checkout, the tarball installed into a
 * fresh project with `npm install <tarball>` (which builds the native module), then used
 * from plain Node, from strict TypeScript without skipLibCheck, from vitest and by `npx`.
 */
import { execa } from 'execa';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkGuestImageFresh } from '../src/machine/guest-image.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
const require = createRequire(import.meta.url);
/** The consumer installs the TypeScript and vitest this checkout has (npm's cache has them since `npm ci`). */
const versionOf = (name: string) => (require(`${name}/package.json`) as { version: string }).version;

/** The environment without what vitest and `npm test` set for this process. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(VITEST|npm_lifecycle_|npm_package_)/.test(key) || key === 'TEST' || key === 'NODE_ENV' || key === 'NODE_OPTIONS') continue;
    env[key] = value;
  }
  return env;
}

const run = (file: string, args: string[], cwd: string, reject = true) => execa(file, args, { cwd, env: cleanEnv(), extendEnv: false, reject });
/** A command the consumer's own npm install put into its node_modules/.bin. */
const bin = (consumer: string, name: string) => join(consumer, 'node_modules/.bin', name);

const PLAIN_MJS = `
import { openSync, closeSync } from 'node:fs';
import { runCycle, SAVE_STRATEGIES, loadGuestImage, checkGuestImageFresh, hugePageMemory, CrcThread, crc32 } from 'hiberlab';

// The CRC thread runs page-scan.mjs, found next to the built crc-thread.js: two pages of
// /dev/zero against one right and one wrong CRC.
const thread = CrcThread.start();
const fd = openSync('/dev/zero', 'r');
const scan = await thread.run({ fd, dataOffset: 0, pageCount: 2, chunkPages: 1, crcs: Uint32Array.of(crc32(new Uint8Array(4096)), 0), counter: new SharedArrayBuffer(4) });
closeSync(fd);
const crcThread = scan ?? { failure: thread.failure };
await thread.close();

console.log(JSON.stringify({
  runCycle: typeof runCycle,
  save: [...SAVE_STRATEGIES.keys()],
  buildId: loadGuestImage().buildId,
  guestHash: checkGuestImageFresh().expected,
  hugePages: hugePageMemory(4 << 20).advice,
  crcThread,
}));
`;

const TYPED_TS = `
import { runCycle, SAVE_STRATEGIES, ImageError, type CycleOptions, type CycleReport, type PageDifference } from 'hiberlab';
import { runCycle as runInVitest, type CycleReport as VitestReport } from 'hiberlab/vitest';
import { expect } from 'vitest';

const options: CycleOptions = { ramBytes: 32 << 20, workload: 'churn:1M@500', save: 'swsusp' };
const strategies: string[] = [...SAVE_STRATEGIES.keys()];

export async function cycle(): Promise<string> {
  const report: CycleReport = await runCycle(options);
  const same: VitestReport = report;
  expect(same).toPassOracle();
  const pages: readonly PageDifference[] = report.oracle.memory?.differingPages ?? [];
  return \`\${report.verdict} \${pages.map((d) => d.pfn.toString(16)).join()} \${strategies.join()} \${ImageError.name}\`;
}
export const runs: typeof runCycle = runInVitest;
`;

const HIBERNATE_TEST = `
import { describe, expect, it } from 'vitest';
import { runCycle } from 'hiberlab/vitest';

describe('hiberlab from its package', () => {
  it('hibernates and resumes a 32 MiB guest', async () => {
    const report = await runCycle({ ramBytes: 32 << 20, workload: 'churn:1M@500' });
    expect(report).toPassOracle();
    console.log(\`CRC thread chunks: \${report.validationScan?.crcThreadChunks}/\${report.validationScan?.chunks}\`);
  }, 120_000);
});
`;

const CONSUMER_TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false },
  files: ['consumer.ts', 'hibernate.test.ts'],
};

describe('the npm package', () => {
  let work: string;
  let consumer: string;
  let packed: { filename: string; files: { path: string }[] };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hiberlab-package-'));
    // npm pack runs `prepare` (the build into dist/) and lists what the tarball holds.
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], ROOT);
    packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0]!;

    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'hiberlab-consumer', private: true, type: 'module' }, null, 2));
    writeFileSync(join(consumer, 'plain.mjs'), PLAIN_MJS);
    writeFileSync(join(consumer, 'consumer.ts'), TYPED_TS);
    writeFileSync(join(consumer, 'hibernate.test.ts'), HIBERNATE_TEST);
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG, null, 2));
    await run('npm', [
      'install', '--no-audit', '--no-fund', '--prefer-offline',
      join(work, packed.filename), `typescript@${versionOf('typescript')}`, `vitest@${versionOf('vitest')}`,
    ], consumer);
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds the built code, the guest image, guest/ and native/, and no tests, benchmarks or CI', () => {
    const files = packed.files.map((f) => f.path);
    expect(files.filter((f) => /^(test|bench|\.ci|tmp|out|build|node_modules)\//.test(f) || /\.(swap|img)$/.test(f))).toEqual([]);
    // The TypeScript sources stay in the repository: the package has their JavaScript and .d.ts.
    expect(files.filter((f) => /^(src|harness)\//.test(f))).toEqual([]);
    for (const f of [
      'README.md', 'bin/hiberlab.mjs', 'binding.gyp', 'native/module.c', 'docs/ABI.md', 'guest/abi.h',
      'images/guest.elf', 'images/manifest.json', 'dist/harness/cli.js', 'dist/src/image/page-scan.mjs',
    ]) expect(files).toContain(f);
    // Every target of `exports` is in the tarball.
    for (const target of Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)))) {
      expect(files).toContain(target.replace(/^\.\//, ''));
    }
  });

  it('has no relative import of a .ts file left in its JavaScript or .d.ts', () => {
    const dist = join(consumer, 'node_modules/hiberlab/dist');
    const left = (readdirSync(dist, { recursive: true, encoding: 'utf8' }))
      .filter((f) => /\.(m?js|d\.m?ts)$/.test(f))
      .filter((f) => /\b(from\s*|import\s*\(\s*)['"]\.\.?\/[^'"]*\.ts['"]/.test(readFileSync(join(dist, f), 'utf8')));
    expect(left).toEqual([]);
  });

  it('imports from plain Node and finds its files (guest image, guest/, native module, CRC thread)', async () => {
    const { stdout } = await run('node', ['plain.mjs'], consumer);
    const out = JSON.parse(stdout) as { runCycle: string; save: string[]; buildId: string; guestHash: string; hugePages: { reason?: string }; crcThread: unknown };
    expect(out.runCycle).toBe('function');
    expect(out.save).toContain('swsusp');
    expect(out.buildId).toMatch(/^[0-9a-f]{64}$/);
    // guest/ shipped whole: the package hashes its guest sources as the checkout does.
    expect(out.guestHash).toBe(checkGuestImageFresh().expected);
    // npm install built the native module (huge pages may still be off on the host).
    expect(out.hugePages.reason ?? '').not.toMatch(/native module/);
    expect(out.crcThread).toEqual({ chunks: 2, badPages: 1, first: { index: 1, expected: 0, actual: expect.any(Number) } });
  }, 60_000);

  it('type-checks a strict NodeNext consumer of hiberlab and hiberlab/vitest without skipLibCheck', async () => {
    const tsc = await run(bin(consumer, 'tsc'), ['--noEmit', '-p', '.'], consumer, false);
    expect(tsc.stdout).toBe('');
    expect(tsc.exitCode).toBe(0);
  }, 120_000);

  it('passes the oracle in a hibernate test of the consumer\'s vitest', async () => {
    const { stdout } = await run(bin(consumer, 'vitest'), ['run', '--reporter=verbose'], consumer);
    expect(stdout).toMatch(/1 passed/);
  }, 180_000);

  it('runs its CLI with npx', async () => {
    const { stdout } = await run('npx', ['--no-install', 'hiberlab', 'inspect', '--help'], consumer);
    expect(stdout).toMatch(/Usage: hiberlab inspect/);
  }, 60_000);
});
