// The digest of the TypeScript sources that dist/ is built from (src/ and harness/: every
// file's path and bytes, in path order). `npm run build` records it in dist/; the bin
// runs the built JavaScript of a checkout only while the digest still matches.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

/** Hex SHA-256 over the paths and bytes of every file under src/ and harness/ of `root`. */
export function sourceDigest(root) {
  const hash = createHash('sha256');
  const paths = ['src', 'harness'].flatMap((d) => [...files(join(root, d))]).map((p) => relative(root, p)).sort();
  for (const path of paths) {
    const bytes = readFileSync(join(root, path));
    hash.update(`${path}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/** Where the build records the digest. */
export const DIGEST_FILE = 'dist/sources.sha256';
