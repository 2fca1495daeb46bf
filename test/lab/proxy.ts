import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  INBOUND_PASSTHROUGH_SOURCE_IPV6,
  PORTS,
  PROXY_GID,
  PROXY_UID,
} from '../../common/constants.js';
import type { Pod } from './lab.js';
import { builtFile } from './paths.js';
import type { LabProcess } from './process.js';

/** The sidecar stand-in of one pod: HAProxy for IPv4 and the lab's relay for IPv6, both as the proxy user. */
export interface Proxy {
  haproxy: LabProcess;
  ipv6Relay: LabProcess;
}

const PROXY_USER = { uid: PROXY_UID, gid: PROXY_GID };

/**
 * `server ... 0.0.0.0:0` forwards to the connection's destination, which HAProxy reads with SO_ORIGINAL_DST for
 * redirected IPv4 connections. `send-proxy` stamps every forwarded connection with a PROXY protocol header, so the
 * lab's server can tell a proxied connection from a direct one without reading any log.
 */
function haproxyConfig(): string {
  return `global
  log stdout format raw local0

defaults
  mode tcp
  log global
  log-format "%ft %ci:%cp -> %fi:%fp from %bi:%bp"
  timeout connect 5s
  timeout client 1m
  timeout server 1m

frontend outbound
  bind 0.0.0.0:${PORTS.outboundCapture}
  default_backend original_destination

backend original_destination
  server original 0.0.0.0:0 send-proxy

frontend inbound
  bind 0.0.0.0:${PORTS.inboundCapture}
  default_backend inbound_passthrough

backend inbound_passthrough
  source ${INBOUND_PASSTHROUGH_SOURCE_IPV4}
  server original 0.0.0.0:0 send-proxy
`;
}

export async function startProxy(pod: Pod): Promise<Proxy> {
  // The relay binds the IPv6 passthrough source, which must be a local address of the pod.
  await pod.exec('ip', ['-6', 'addr', 'replace', `${INBOUND_PASSTHROUGH_SOURCE_IPV6}/128`, 'dev', 'lo']);
  const config = join(pod.tempDir, `haproxy-${pod.name}.cfg`);
  writeFileSync(config, haproxyConfig(), { mode: 0o644 });
  const haproxy = pod.spawn('haproxy', ['-db', '-f', config], PROXY_USER);
  const ipv6Relay = pod.spawn(
    'node',
    [
      builtFile('test/lab/programs/ipv6-relay.js'),
      String(PORTS.outboundCapture),
      String(PORTS.inboundCapture),
      INBOUND_PASSTHROUGH_SOURCE_IPV6,
    ],
    PROXY_USER,
  );
  await Promise.all([waitForListeners(pod, haproxy), ipv6Relay.waitForLine(/^listening/)]);
  return { haproxy, ipv6Relay };
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
