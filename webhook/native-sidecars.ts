/**
 * Whether injected proxies become native sidecars (init containers with restartPolicy Always).
 *
 * The apiserver accepts the field from 1.29 (SidecarContainers on by default); below that a pod asking for a
 * native sidecar cannot be created at all. `auto` follows Istio's rule instead of the apiserver's version: the
 * kubelet runs the pod, and version skew lets kubelets lag the apiserver by up to three minors, so `auto` turns
 * native sidecars on when every node's kubelet is 1.33 or newer (where SidecarContainers is GA), or, for a pod
 * already bound to a node (spec.nodeName), when that node's kubelet is.
 */
import type { NativeSidecarMode } from './values.js';

export const NATIVE_SIDECARS_MIN_MINOR = 29;
export const NATIVE_SIDECARS_KUBELET_MIN_MINOR = 33;

export interface ServerVersion {
  major: string;
  minor: string;
  gitVersion?: string;
}

/** What was learned of the cluster, for `auto` and for refusing what the apiserver cannot take. */
export interface ClusterSidecarSupport {
  /** The apiserver's version, e.g. "v1.20.2". */
  apiserverVersion: string;
  /** Whether the apiserver accepts init containers with a restartPolicy (1.29 or newer). */
  apiserverAccepts: boolean;
  /** Each node's kubelet version (status.nodeInfo.kubeletVersion), by node name; empty until nodes are listed. */
  kubeletVersions: ReadonlyMap<string, string>;
}

/**
 * Native sidecars for pods that do not choose: a fixed answer (offline, or the apiserver unknown), or the
 * cluster's facts, resolved per pod.
 */
export type NativeSidecarDefault = boolean | ClusterSidecarSupport;

/** Minor versions such as "29+" (as some distributions report them) count as 29. */
export function supportsNativeSidecars(version: ServerVersion): boolean {
  const major = Number.parseInt(version.major, 10);
  const minor = Number.parseInt(version.minor, 10);
  if (Number.isNaN(major) || Number.isNaN(minor)) return false;
  return major > 1 || (major === 1 && minor >= NATIVE_SIDECARS_MIN_MINOR);
}

/** A kubelet version such as "v1.33.2" or "v1.34.0-eks-abc": 1.33 or newer. */
export function kubeletSupportsNativeSidecars(kubeletVersion: string): boolean {
  const match = /^v?(\d+)\.(\d+)/.exec(kubeletVersion);
  if (!match) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > 1 || (major === 1 && minor >= NATIVE_SIDECARS_KUBELET_MIN_MINOR);
}

export type NativeSidecarResolution = { native: boolean } | { refused: string };

/**
 * The layout for one pod: its own `sidecar.istio.io/nativeSidecar` choice, else the values' mode, else the
 * cluster's rule. A pod asking for native sidecars from an apiserver that cannot take them is refused (the reason
 * says which version), rather than failing later in the apiserver's validation.
 */
export function resolveNativeSidecars(
  podChoice: boolean | undefined,
  mode: NativeSidecarMode,
  cluster: NativeSidecarDefault,
  nodeName: string | undefined,
): NativeSidecarResolution {
  if (typeof cluster === 'boolean') return { native: podChoice ?? cluster };
  if (podChoice === true && !cluster.apiserverAccepts) {
    return {
      refused:
        `the apiserver (${cluster.apiserverVersion}) cannot take native sidecars, which need Kubernetes ` +
        `1.${NATIVE_SIDECARS_MIN_MINOR} or newer`,
    };
  }
  if (podChoice !== undefined) return { native: podChoice };
  if (mode !== 'auto') return { native: mode === 'true' };
  if (!cluster.apiserverAccepts) return { native: false };
  if (nodeName) {
    const version = cluster.kubeletVersions.get(nodeName);
    return { native: version !== undefined && kubeletSupportsNativeSidecars(version) };
  }
  const versions = [...cluster.kubeletVersions.values()];
  return { native: versions.length > 0 && versions.every(kubeletSupportsNativeSidecars) };
}
