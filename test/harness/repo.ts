/** Where the repository is: the same answer from test/harness and from its compiled copy in dist/test/harness. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot();

export function repoPath(...segments: string[]): string {
  return join(REPO_ROOT, ...segments);
}
