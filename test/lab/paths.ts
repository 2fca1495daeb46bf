import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
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

/** The lab's compiled programs and the modules they import: dist/test/lab without its source maps. */
const PROGRAMS_DIR = 'test/lab';

let programsCopy: string | undefined;

/**
 * A lab program (`programs/tcp-server.js`, ...) from a world-readable copy of dist/test/lab, since the lab runs
 * some programs as the proxy user, who may not be able to enter the checkout (a clone under /root, a `mktemp -d`
 * folder). The copy is named by a hash of its content, beside the lab's compiled C program, so concurrent test
 * processes share it and a changed build never runs an older copy.
 */
export function labProgram(relativePath: string): string {
  programsCopy ??= readableCopy(mustExist(repoPath('dist', PROGRAMS_DIR)));
  return mustExist(join(programsCopy, relativePath));
}

function readableCopy(source: string): string {
  const files = listFiles(source).filter((file) => file.endsWith('.js'));
  const hash = createHash('sha256');
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(source, file)))
      .update('\0');
  const root = join(tmpdir(), 'mesh-injector-lab');
  const target = join(root, `programs-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(target)) return target;
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  // Filled beside the target and renamed, so a concurrent test process never runs a half-written copy.
  const partial = mkdtempSync(`${target}.`);
  for (const file of files) cpSync(join(source, file), join(partial, file));
  // The programs are ES modules; outside the checkout no package.json says so.
  writeFileSync(join(partial, 'package.json'), '{ "type": "module" }\n');
  chmodSync(partial, 0o755);
  try {
    renameSync(partial, target);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    // Another test process made the same copy first.
    if (!existsSync(target)) throw error;
  }
  return target;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}
