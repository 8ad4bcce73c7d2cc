/**
 * Where hiberlab's own files are: the package root, the nearest directory above this
 * module whose package.json is hiberlab's. The TypeScript in src/ and the JavaScript
 * built from it (dist/src/, in an installed package) sit at different depths, so files
 * that ship beside the code (images/, guest/, build/Release/) are found from the root,
 * never by counting `../` from a module.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'hiberlab') return dir;
    } catch {
      // no package.json here, or not JSON: look further up
    }
    if (dirname(dir) === dir) throw new Error(`hiberlab: no package.json named "hiberlab" above ${from}`);
  }
}

const ROOT_URL = pathToFileURL(`${findPackageRoot(dirname(fileURLToPath(import.meta.url)))}/`);

/** The root of the hiberlab package (ends with a separator). */
export const PACKAGE_ROOT: string = fileURLToPath(ROOT_URL);

/** The absolute path of `relative` ('/'-separated) inside the package. */
export function packagePath(relative: string): string {
  return fileURLToPath(new URL(relative, ROOT_URL));
}
