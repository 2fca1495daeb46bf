/**
 * Whether injected proxies become native sidecars (init containers with restartPolicy Always). `auto` enables
 * them when the apiserver is 1.29 or newer, where the SidecarContainers feature is on by default.
 */
import type { NativeSidecarMode } from './values.js';

export const NATIVE_SIDECARS_MIN_MINOR = 29;

export interface ServerVersion {
  major: string;
  minor: string;
  gitVersion?: string;
}

/** Minor versions such as "29+" (as some distributions report them) count as 29. */
export function supportsNativeSidecars(version: ServerVersion): boolean {
  const major = Number.parseInt(version.major, 10);
  const minor = Number.parseInt(version.minor, 10);
  if (Number.isNaN(major) || Number.isNaN(minor)) return false;
  return major > 1 || (major === 1 && minor >= NATIVE_SIDECARS_MIN_MINOR);
}

export async function resolveNativeSidecars(
  mode: NativeSidecarMode,
  fetchVersion: () => Promise<ServerVersion>,
): Promise<{ enabled: boolean; reason: string }> {
  if (mode !== 'auto') return { enabled: mode === 'true', reason: `nativeSidecars is ${mode}` };
  try {
    const version = await fetchVersion();
    const enabled = supportsNativeSidecars(version);
    const shown = version.gitVersion ?? `${version.major}.${version.minor}`;
    return {
      enabled,
      reason: `apiserver ${shown} is ${enabled ? 'at least' : 'older than'} 1.${NATIVE_SIDECARS_MIN_MINOR}`,
    };
  } catch (error) {
    return {
      enabled: false,
      reason: `apiserver version unknown (${(error as Error).message}); using classic sidecars`,
    };
  }
}
