// The digest of what dist/ is built from: every file under src/ and harness/ (path and
// bytes, in path order), package.json, the two tsconfig files and the TypeScript version
// that compiles them. `npm run build` records it in dist/; the bin runs the built JavaScript of a
// checkout only while the digest still matches.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

/** Every file under `dir`, depth first. */
export function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

/** The version of the TypeScript `root` compiles with, or 'none' when it has none installed. */
function typescriptVersion(root) {
  try {
    const path = createRequire(join(root, 'package.json')).resolve('typescript/package.json');
    return JSON.parse(readFileSync(path, 'utf8')).version; // read, not required: require() caches
  } catch {
    return 'none';
  }
}

/** Hex SHA-256 over the build's inputs under `root` (see above). */
export function sourceDigest(root) {
  const hash = createHash('sha256').update(`typescript ${typescriptVersion(root)}\0`);
  const sources = ['src', 'harness'].flatMap((d) => [...files(join(root, d))]);
  const configs = ['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => join(root, f)).filter((p) => existsSync(p));
  for (const path of [...sources, ...configs].map((p) => relative(root, p)).sort()) {
    const bytes = readFileSync(join(root, path));
    hash.update(`${path}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/** Where the build records the digest. */
export const DIGEST_FILE = 'dist/sources.sha256';
