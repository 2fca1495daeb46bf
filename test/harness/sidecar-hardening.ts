/**
 * The hardening every injected pod must keep, whatever the template or profile: istio-proxy as uid/gid 1337,
 * non-root, on a read-only root filesystem, without privilege or any added capability; istio-init with NET_ADMIN and
 * NET_RAW only, every other capability dropped, no privilege escalation. Each function lists what a container's
 * securityContext lacks, so a test reads `expect(gaps).toEqual([])` and a failure names the field.
 */
import type { V1SecurityContext } from '@kubernetes/client-node';
import { PROXY_GID, PROXY_UID } from '../../common/constants.js';

export const PROXY_HARDENING = {
  runAsUser: PROXY_UID,
  runAsGroup: PROXY_GID,
  runAsNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  privileged: false,
} as const satisfies V1SecurityContext;

export const INIT_CAPABILITIES = ['NET_ADMIN', 'NET_RAW'] as const;

export function proxyHardeningGaps(context: V1SecurityContext | undefined): string[] {
  const gaps = fieldGaps(context, PROXY_HARDENING);
  if (!context?.capabilities?.drop?.includes('ALL')) gaps.push('capabilities.drop does not include ALL');
  if ((context?.capabilities?.add ?? []).length > 0)
    gaps.push(`capabilities.add is ${JSON.stringify(context?.capabilities?.add)}, expected none`);
  return gaps;
}

export function initHardeningGaps(context: V1SecurityContext | undefined): string[] {
  const gaps = fieldGaps(context, { allowPrivilegeEscalation: false, privileged: false });
  if (!context?.capabilities?.drop?.includes('ALL')) gaps.push('capabilities.drop does not include ALL');
  const added = [...(context?.capabilities?.add ?? [])].sort();
  if (JSON.stringify(added) !== JSON.stringify([...INIT_CAPABILITIES]))
    gaps.push(`capabilities.add is ${JSON.stringify(added)}, expected ${JSON.stringify(INIT_CAPABILITIES)}`);
  return gaps;
}

function fieldGaps(context: V1SecurityContext | undefined, expected: V1SecurityContext): string[] {
  return Object.entries(expected)
    .filter(([field, value]) => context?.[field as keyof V1SecurityContext] !== value)
    .map(
      ([field, value]) =>
        `${field} is ${JSON.stringify(context?.[field as keyof V1SecurityContext])}, expected ${JSON.stringify(value)}`,
    );
}
