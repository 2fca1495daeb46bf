import { existsSync, readFileSync } from 'node:fs';
import { repoPath } from '../harness/repo.js';

/**
 * A compiled file under dist/. Processes inside namespaces are started with plain `node`, so the lab's programs and
 * the init program must have been built first.
 */
export function builtFile(relativePath: string): string {
  return mustExist(repoPath('dist', relativePath));
}

/** The built file of a command that package.json's `bin` names, e.g. `mesh-iptables`. */
export function builtBin(command: string): string {
  const { bin } = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
    bin?: Record<string, string>;
  };
  const file = bin?.[command];
  if (file === undefined) throw new Error(`package.json has no bin named ${command}`);
  return mustExist(repoPath(file));
}

function mustExist(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return file;
}
