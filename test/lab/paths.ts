import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder above this module that holds package.json; the same from test/lab and from dist/test/lab. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no package.json above the lab');
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot();

/**
 * A compiled file under dist/. Processes inside namespaces are started with plain `node`, so the lab's programs and
 * the init program must have been built first.
 */
export function builtFile(relativePath: string): string {
  const file = join(REPO_ROOT, 'dist', relativePath);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return file;
}
