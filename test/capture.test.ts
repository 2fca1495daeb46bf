/**
 * Real connections through the rules `mesh-iptables` applies in a network namespace: HAProxy (IPv4) and the lab's
 * relay (IPv6) stand in for the sidecar, small TCP servers for the apps. Every forwarded connection carries the
 * proxy's PROXY protocol header, so the receiving server reports whether it came through the proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  INBOUND_PASSTHROUGH_SOURCE_IPV6,
  PORTS,
  PROXY_GID,
  PROXY_UID,
} from '../common/constants.js';
import { missingRequirements } from './harness/requirements.js';
import type { IptablesBackend, Lab, Pod, ServerView } from './lab/index.js';
import {
  connect,
  createLab,
  IPTABLES_BACKENDS,
  labRequirements,
  runMeshIptables,
  startProxy,
  startTcpServer,
  webhookInitArgs,
} from './lab/index.js';

const missing = missingRequirements(labRequirements(), 'capture tests (network namespaces)');

const FAMILIES = [
  {
    name: 'IPv4',
    addressOf: (pod: Pod) => pod.ipv4,
    loopback: '127.0.0.1',
    passthrough: INBOUND_PASSTHROUGH_SOURCE_IPV4,
  },
  {
    name: 'IPv6',
    addressOf: (pod: Pod) => pod.ipv6,
    loopback: '::1',
    passthrough: INBOUND_PASSTHROUGH_SOURCE_IPV6,
  },
];

/** The app's own service port. */
const APP_PORT = 8080;
/** Another app port, for include and exclude lists. */
const SECOND_PORT = 8081;
const PROXY_PORTS = [PORTS.proxyStats, PORTS.readiness, PORTS.status];

type PodRole = 'app' | 'peer' | 'other';
interface Connection {
  from: PodRole;
  to: PodRole;
  port: number;
}

/**
 * Each case: the pod's traffic annotations (given the pod without rules that the CIDR lists name), which the
 * webhook turns into init arguments, and the connections they must and must not capture.
 */
const ANNOTATION_CASES: {
  title: string;
  /** The injected pod's name. */
  pod: string;
  annotations: (other: Pod) => Record<string, string>;
  captured: Connection[];
  bypassed: Connection[];
}[] = [
  {
    title: `an excluded inbound port (${SECOND_PORT})`,
    pod: 'exclude-inbound',
    annotations: () => ({ [ANNOTATIONS.excludeInboundPorts]: String(SECOND_PORT) }),
    captured: [{ from: 'peer', to: 'app', port: APP_PORT }],
    bypassed: [{ from: 'peer', to: 'app', port: SECOND_PORT }],
  },
  {
    title: `an include list of inbound ports (${APP_PORT})`,
    pod: 'include-inbound',
    annotations: () => ({ [ANNOTATIONS.includeInboundPorts]: String(APP_PORT) }),
    captured: [{ from: 'peer', to: 'app', port: APP_PORT }],
    bypassed: [{ from: 'peer', to: 'app', port: SECOND_PORT }],
  },
  {
    title: `an excluded outbound port (${SECOND_PORT})`,
    pod: 'exclude-port',
    annotations: () => ({ [ANNOTATIONS.excludeOutboundPorts]: String(SECOND_PORT) }),
    captured: [{ from: 'app', to: 'peer', port: APP_PORT }],
    bypassed: [{ from: 'app', to: 'peer', port: SECOND_PORT }],
  },
  {
    title: 'excluded outbound CIDRs',
    pod: 'exclude-cidr',
    annotations: (other) => ({ [ANNOTATIONS.excludeOutboundIPRanges]: hostCidrs(other) }),
    captured: [{ from: 'app', to: 'peer', port: APP_PORT }],
    bypassed: [{ from: 'app', to: 'other', port: APP_PORT }],
  },
  {
    title: 'an include list of outbound CIDRs',
    pod: 'include-cidr',
    annotations: (other) => ({ [ANNOTATIONS.includeOutboundIPRanges]: hostCidrs(other) }),
    captured: [{ from: 'app', to: 'other', port: APP_PORT }],
    bypassed: [{ from: 'app', to: 'peer', port: APP_PORT }],
  },
  {
    title: `an include list of outbound ports (${SECOND_PORT}) and no CIDRs`,
    pod: 'include-port',
    annotations: () => ({
      [ANNOTATIONS.includeOutboundIPRanges]: '',
      [ANNOTATIONS.includeOutboundPorts]: String(SECOND_PORT),
    }),
    captured: [{ from: 'app', to: 'peer', port: SECOND_PORT }],
    bypassed: [{ from: 'app', to: 'peer', port: APP_PORT }],
  },
];

/** The connection arrived at `destination` with the proxy's header: it went through the proxy. */
function expectProxied(view: ServerView, client: string, destination: string, port: number): void {
  expect(view.local).toEqual({ address: destination, port });
  expect(view.proxied?.source.address).toBe(client);
  expect(view.proxied?.destination).toEqual({ address: destination, port });
}

/** The connection arrived from `client` itself, with no proxy header. */
function expectDirect(view: ServerView, client: string, destination: string, port: number): void {
  expect(view.local).toEqual({ address: destination, port });
  expect(view.proxied).toBeNull();
  expect(view.peer.address).toBe(client);
}

describe.skipIf(missing.length > 0).each(IPTABLES_BACKENDS)(
  'capture with iptables-%s',
  (backend: IptablesBackend) => {
    let lab: Lab;
    /** Pods without rules: `peer` and `other` serve APP_PORT and SECOND_PORT; the CIDR lists name `other`. */
    let peer: Pod;
    let other: Pod;

    beforeAll(async () => {
      lab = await createLab();
      [peer, other] = await Promise.all([lab.addPod('peer'), lab.addPod('other')]);
      await Promise.all([peer, other].map((pod) => startTcpServer(pod, [APP_PORT, SECOND_PORT])));
    });
    afterAll(() => lab?.destroy());

    /** A pod as injection makes it: the init program's rules, then the proxy; its app listens on `ports`. */
    async function injectedPod(
      name: string,
      args: readonly string[],
      ports: readonly number[],
    ): Promise<Pod> {
      const pod = await lab.addPod(name);
      const [init] = await Promise.all([
        runMeshIptables(pod, args, { backend, dualStack: true }),
        startTcpServer(pod, ports),
      ]);
      expect(init.exitCode, `mesh-iptables failed:\n${init.stderr}${init.stdout}`).toBe(0);
      await startProxy(pod);
      return pod;
    }

    describe("with the webhook's default arguments", () => {
      let app: Pod;
      beforeAll(async () => {
        app = await injectedPod('app', await webhookInitArgs(), [APP_PORT, ...PROXY_PORTS]);
      });

      it.each(FAMILIES)(
        "$name: an app's outbound connection goes through the proxy and arrives",
        async (family) => {
          const view = await connect(app, family.addressOf(peer), APP_PORT);
          expectProxied(view, family.addressOf(app), family.addressOf(peer), APP_PORT);
        },
      );

      it.each(FAMILIES)('$name: connections of the proxy user are not captured', async (family) => {
        const view = await connect(app, family.addressOf(peer), APP_PORT, { uid: PROXY_UID, gid: PROXY_GID });
        expectDirect(view, family.addressOf(app), family.addressOf(peer), APP_PORT);
      });

      it.each(FAMILIES)('$name: connections of the proxy group are not captured', async (family) => {
        const view = await connect(app, family.addressOf(peer), APP_PORT, { uid: 1000, gid: PROXY_GID });
        expectDirect(view, family.addressOf(app), family.addressOf(peer), APP_PORT);
      });

      it.each(FAMILIES)('$name: traffic to the loopback address is untouched', async (family) => {
        const view = await connect(app, family.loopback, APP_PORT);
        expectDirect(view, family.loopback, family.loopback, APP_PORT);
      });

      it.each(FAMILIES)("$name: an app's connection to its own pod address is untouched", async (family) => {
        const view = await connect(app, family.addressOf(app), APP_PORT);
        expectDirect(view, family.addressOf(app), family.addressOf(app), APP_PORT);
      });

      it.each(FAMILIES)(
        '$name: an inbound connection goes through the proxy and reaches the app from the passthrough source',
        async (family) => {
          const view = await connect(peer, family.addressOf(app), APP_PORT);
          expectProxied(view, family.addressOf(peer), family.addressOf(app), APP_PORT);
          expect(view.peer.address).toBe(family.passthrough);
        },
      );

      it.each(FAMILIES)(
        "$name: the proxy's connection to its own pod address goes to the inbound listener",
        async (family) => {
          const view = await connect(app, family.addressOf(app), APP_PORT, {
            uid: PROXY_UID,
            gid: PROXY_GID,
          });
          expectProxied(view, family.addressOf(app), family.addressOf(app), APP_PORT);
          expect(view.peer.address).toBe(family.passthrough);
        },
      );

      it.each(FAMILIES.flatMap((family) => PROXY_PORTS.map((port) => ({ ...family, port }))))(
        '$name: inbound port $port bypasses the proxy',
        async ({ port, ...family }) => {
          const view = await connect(peer, family.addressOf(app), port);
          expectDirect(view, family.addressOf(peer), family.addressOf(app), port);
        },
      );
    });

    describe.each(ANNOTATION_CASES)('with $title', ({ pod, annotations, captured, bypassed }) => {
      let app: Pod;
      beforeAll(async () => {
        app = await injectedPod(pod, await webhookInitArgs(annotations(other)), [APP_PORT, SECOND_PORT]);
      });

      it.each(FAMILIES)('$name: captures what the annotations say and nothing else', async (family) => {
        const pods = { app, peer, other };
        for (const { from, to, port } of captured) {
          const view = await connect(pods[from], family.addressOf(pods[to]), port);
          expectProxied(view, family.addressOf(pods[from]), family.addressOf(pods[to]), port);
        }
        for (const { from, to, port } of bypassed) {
          const view = await connect(pods[from], family.addressOf(pods[to]), port);
          expectDirect(view, family.addressOf(pods[from]), family.addressOf(pods[to]), port);
        }
      });
    });
  },
);

/** Both of a pod's addresses as host CIDRs, for the outbound IP range annotations. */
function hostCidrs(pod: Pod): string {
  return `${pod.ipv4}/32,${pod.ipv6}/128`;
}
