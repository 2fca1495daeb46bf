/**
 * Who the proxy runs as, and what the capture rules must exempt: Istio's TPROXY privileges and its
 * `adjustInitContainerUser` (pkg/kube/inject/webhook.go), as steps on rendered containers.
 */
import type { V1Container } from '@kubernetes/client-node';
import { PROXY_GID } from '../common/constants.js';
import type { InterceptionMode } from './values.js';

/**
 * Under TPROXY the proxy binds transparently to original destinations, which needs NET_ADMIN and, as Istio runs
 * it, uid 0 (gid 1337, so the init container's owner rules still tell its traffic apart).
 */
export function withInterceptionPrivileges(proxy: V1Container, mode: InterceptionMode): V1Container {
  if (mode !== 'TPROXY') return proxy;
  const securityContext = proxy.securityContext ?? {};
  const add = securityContext.capabilities?.add ?? [];
  return {
    ...proxy,
    securityContext: {
      ...securityContext,
      capabilities: {
        ...securityContext.capabilities,
        add: add.includes('NET_ADMIN') ? add : [...add, 'NET_ADMIN'],
      },
      runAsNonRoot: false,
      runAsUser: 0,
      runAsGroup: PROXY_GID,
    },
  };
}

/** Whether a rendered proxy has what TPROXY interception needs. */
export function canRunTproxy(proxy: V1Container): boolean {
  const securityContext = proxy.securityContext;
  return securityContext?.runAsUser === 0 && (securityContext.capabilities?.add ?? []).includes('NET_ADMIN');
}

/**
 * After the pod's own istio-proxy is merged: TPROXY puts the proxy back to uid 0 if the user moved it, and the
 * init container's `-u` (and, with `followGroup`, `-g`) follow the uid (and gid) the user gave the proxy, so the
 * proxy's own traffic is not captured again. `-g` is added only when the gid differs from the uid (istio-iptables'
 * default for it). Istio's adjustInitContainerUser sets `-u` only (values init.followProxyGroup: false).
 */
export function followProxyIdentity(
  proxy: V1Container,
  init: V1Container | undefined,
  userProxy: V1Container | undefined,
  mode: InterceptionMode,
  followGroup = true,
): { proxy: V1Container; init: V1Container | undefined } {
  const uid = userProxy?.securityContext?.runAsUser;
  const gid = followGroup ? userProxy?.securityContext?.runAsGroup : undefined;
  if (uid === undefined && gid === undefined) return { proxy, init };
  const resetProxy =
    mode === 'TPROXY' && uid !== undefined
      ? { ...proxy, securityContext: { ...proxy.securityContext, runAsUser: 0 } }
      : proxy;
  if (!init?.args) return { proxy: resetProxy, init };
  const args = [...init.args];
  const uidAt = args.indexOf('-u');
  if (uidAt < 0 || uidAt + 1 >= args.length) return { proxy: resetProxy, init };
  if (typeof uid === 'number' && uid !== 0) args[uidAt + 1] = String(uid);
  if (typeof gid === 'number' && String(gid) !== args[uidAt + 1]) {
    const gidAt = args.indexOf('-g');
    if (gidAt >= 0 && gidAt + 1 < args.length) args[gidAt + 1] = String(gid);
    else args.splice(uidAt + 2, 0, '-g', String(gid));
  }
  return { proxy: resetProxy, init: { ...init, args } };
}
