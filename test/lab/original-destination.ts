import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../harness/repo.js';
import { runCommand } from './command.js';

const SOURCE = repoPath('test/lab/programs/original-destination.c');

let compiled: Promise<string> | undefined;

/**
 * The lab's IPv6 original-destination reader (programs/original-destination.c), compiled with gcc on first use.
 * The binary is cached under the system's temporary folder by a hash of its source, world-readable because the
 * proxy user runs it; the folder under /root would not be.
 */
export function originalDestinationProgram(): Promise<string> {
  compiled ??= compile();
  return compiled;
}

async function compile(): Promise<string> {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'mesh-injector-lab');
  const binary = join(dir, `original-destination-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  // Compiled beside the target and renamed, so a concurrent test process never runs a half-written binary.
  const partial = `${binary}.${process.pid}`;
  await runCommand('gcc', ['-O2', '-Wall', '-Werror', '-o', partial, SOURCE]);
  chmodSync(partial, 0o755);
  renameSync(partial, binary);
  return binary;
}
