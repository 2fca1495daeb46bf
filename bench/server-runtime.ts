/**
 * The allocator the bench's servers run on: the one the webhook image preloads (its Dockerfile stage's
 * `ENV LD_PRELOAD`), found among this host's libraries. The webhook and its baselines all run on it, so that they
 * compare as the image runs the webhook, and alike. Where the host lacks the library, they all run on glibc's malloc
 * and the report says so.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { parseDockerfile, stageEnv } from '../test/harness/dockerfile.js';
import { repoPath } from '../test/harness/repo.js';

const WEBHOOK_STAGE = 'webhook';

export interface ServerRuntime {
  /** Environment for every server process the bench starts (empty on glibc's malloc). */
  env: Record<string, string>;
  /** One line for the report. */
  description: string;
}

/** The library the stage preloads, as a path inside the image, if any. */
export function imagePreload(dockerfileText: string, stageName = WEBHOOK_STAGE): string | undefined {
  const stage = parseDockerfile(dockerfileText).stages.find((s) => s.name === stageName);
  if (!stage) throw new Error(`the Dockerfile has no stage ${stageName}`);
  return stageEnv(stage).get('LD_PRELOAD');
}

/** The path `ldconfig -p` gives for a library's file name, for this host's architecture. */
export function libraryPath(ldconfigOutput: string, fileName: string): string | undefined {
  for (const line of ldconfigOutput.split('\n')) {
    const match = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)$/.exec(line);
    if (match?.[1] === fileName && (match[2] ?? '').includes(hostArchitectureTag())) return match[3];
  }
  return undefined;
}

/** How ldconfig names this host's ABI: x86-64, AArch64. */
function hostArchitectureTag(): string {
  return process.arch === 'arm64' ? 'AArch64' : 'x86-64';
}

let found: ServerRuntime | undefined;

export function serverRuntime(): ServerRuntime {
  return (found ??= findServerRuntime());
}

function findServerRuntime(): ServerRuntime {
  const preload = imagePreload(readFileSync(repoPath('Dockerfile'), 'utf8'));
  if (!preload) return { env: {}, description: "glibc's malloc, as the webhook image runs" };
  const fileName = posix.basename(preload);
  const hostPath = libraryPath(ldconfigOutput(), fileName);
  if (!hostPath) {
    return {
      env: {},
      description:
        `glibc's malloc: the webhook image preloads ${fileName}, which this host lacks ` +
        "(sudo scripts/install-prerequisites.sh installs it), so the memory figures are not the image's",
    };
  }
  return {
    env: { LD_PRELOAD: hostPath },
    description: `${hostPath}, as the webhook image preloads ${preload}`,
  };
}

function ldconfigOutput(): string {
  // Not always on a non-root user's PATH.
  for (const command of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      return execFileSync(command, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      // the next one
    }
  }
  return '';
}
