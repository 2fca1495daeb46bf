import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  INBOUND_PASSTHROUGH_SOURCE_IPV6,
  PORTS,
  PROXY_GID,
  PROXY_UID,
} from '../../common/constants.js';
import { PROXY_HEADER } from './http-report.js';
import type { Identity, Pod } from './lab.js';
import { originalDestinationProgram } from './original-destination.js';
import { labProgram } from './paths.js';
import type { LabProcess } from './process.js';

/** The sidecar stand-in for the TCP apps: HAProxy for IPv4 and the lab's relay for IPv6, both as the proxy user. */
export interface Proxy {
  haproxy: LabProcess;
  ipv6Relay: LabProcess;
}

const PROXY_USER: Identity = { uid: PROXY_UID, gid: PROXY_GID };

type Direction = 'outbound' | 'inbound';

/** How a proxy marks what it forwards, so the app can tell a proxied connection from a direct one. */
interface Marking {
  mode: 'tcp' | 'http';
  /** Lines for the backend of each direction. */
  backend: (direction: Direction) => string[];
  /** Options of the backend's server line. */
  server: string;
}

/**
 * HAProxy as the sidecar: outbound on 15001 and inbound on 15006, each forwarding to the connection's original
 * destination (`server ... 0.0.0.0:0`, which HAProxy reads with SO_ORIGINAL_DST for redirected IPv4 connections),
 * inbound from the passthrough source as Envoy's inbound passthrough cluster does.
 */
function haproxyConfig({ mode, backend, server }: Marking): string {
  const lines = (direction: Direction) =>
    backend(direction)
      .map((line) => `  ${line}\n`)
      .join('');
  return `global
  log stdout format raw local0

defaults
  mode ${mode}
  log global
  timeout connect 5s
  timeout client 1m
  timeout server 1m

frontend outbound
  bind 0.0.0.0:${PORTS.outboundCapture}
  default_backend original_destination

backend original_destination
${lines('outbound')}  server original 0.0.0.0:0 ${server}

frontend inbound
  bind 0.0.0.0:${PORTS.inboundCapture}
  default_backend inbound_passthrough

backend inbound_passthrough
  source ${INBOUND_PASSTHROUGH_SOURCE_IPV4}
${lines('inbound')}  server original 0.0.0.0:0 ${server}
`;
}

/**
 * The proxy for the lab's TCP apps. Every forwarded connection starts with a PROXY protocol header (HAProxy's
 * `send-proxy`, which the relay imitates), so the lab's TCP server reports whether it came through the proxy.
 */
export async function startProxy(pod: Pod): Promise<Proxy> {
  // The relay binds the IPv6 passthrough source, which must be a local address of the pod.
  await pod.exec('ip', ['-6', 'addr', 'replace', `${INBOUND_PASSTHROUGH_SOURCE_IPV6}/128`, 'dev', 'lo']);
  const haproxy = startHaproxy(pod, { mode: 'tcp', backend: () => [], server: 'send-proxy' }, PROXY_USER);
  const ipv6Relay = pod.spawn(
    'node',
    [
      labProgram('programs/ipv6-relay.js'),
      String(PORTS.outboundCapture),
      String(PORTS.inboundCapture),
      INBOUND_PASSTHROUGH_SOURCE_IPV6,
      await originalDestinationProgram(),
    ],
    PROXY_USER,
  );
  await Promise.all([waitForListeners(pod, haproxy), ipv6Relay.waitForLine(/^listening/)]);
  return { haproxy, ipv6Relay };
}

/**
 * The proxy for the lab's HTTP apps (IPv4), run as `identity`: each hop adds a PROXY_HEADER `<pod> <direction>`
 * to the request, so the app lists every proxy the request passed.
 */
export async function startHttpProxy(pod: Pod, identity: Identity): Promise<LabProcess> {
  const haproxy = startHaproxy(
    pod,
    {
      mode: 'http',
      backend: (direction) => [
        `http-request add-header ${PROXY_HEADER} "${pod.name} ${direction}"`,
        // Each request goes to its own connection's original destination, never over another's connection.
        'http-reuse never',
      ],
      server: '',
    },
    identity,
  );
  await waitForListeners(pod, haproxy);
  return haproxy;
}

function startHaproxy(pod: Pod, marking: Marking, identity: Identity): LabProcess {
  const config = join(pod.tempDir, `haproxy-${pod.name}.cfg`);
  writeFileSync(config, haproxyConfig(marking), { mode: 0o644 });
  return pod.spawn('haproxy', ['-db', '-f', config], identity);
}

/** HAProxy prints nothing when it is ready, so this watches the pod's listening sockets instead. */
async function waitForListeners(pod: Pod, haproxy: LabProcess): Promise<void> {
  const ports = [PORTS.outboundCapture, PORTS.inboundCapture];
  for (;;) {
    if (!haproxy.running) throw haproxy.failure('did not start');
    const { stdout } = await pod.exec('ss', ['-Hltn4']);
    if (ports.every((port) => stdout.includes(`:${port} `))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
