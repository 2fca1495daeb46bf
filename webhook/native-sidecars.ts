/**
 * Whether injected proxies become native sidecars (init containers with restartPolicy Always). `auto` enables
 * them when the apiserver is 1.29 or newer, where the SidecarContainers feature is on by default.
 */

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
