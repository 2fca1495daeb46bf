/**
 * Tests that need root, the kernel's netfilter or a real control plane call `missingRequirement` to learn whether
 * they can run. Outside CI a missing requirement skips the suite with a message saying what is missing; with
 * CI=true it fails instead, because CI installs everything and must never pass by skipping.
 */
import { execFileSync } from 'node:child_process';

export function inCI(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the list of what is missing, or an empty list. In CI a non-empty list throws, so the suite fails loudly
 * instead of skipping.
 */
export function missingRequirements(checks: Record<string, boolean>, suite: string): string[] {
  const missing = Object.entries(checks)
    .filter(([, ok]) => !ok)
    .map(([what]) => what);
  if (missing.length > 0) {
    const what = missing.join(', ');
    if (inCI()) throw new Error(`${suite}: missing ${what} (CI=true: these tests must run in CI)`);
    console.warn(`${suite}: skipped, missing ${what}`);
  }
  return missing;
}
