/**
 * Injected pods really run, and their traffic really goes through the proxies: the counters of the proxies'
 * listeners (Envoy's own names, on 15090) and the peer address the echo server sees tell which path each request
 * took. 127.0.0.6 is the address the inbound proxy connects to the app from.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deleteNamespace, must, target } from './target.js';
import {
  BYPASS_PORT,
  ECHO_PORT,
  INBOUND_LISTENER,
  OUTBOUND_LISTENER,
  type Pod,
  apply,
  clientPod,
  curlFrom,
  echoDeployment,
  echoService,
  getPod,
  listenerConnections,
  plainEchoPod,
  podsWithLabel,
} from './workloads.js';

const REQUESTS = 3;
const INBOUND_PROXY_ADDRESS = '127.0.0.6';

describe.skipIf(target.skip !== undefined)('injected pods carry their traffic through the proxies', () => {
  let mesh: string;
  let plain: string;
  let server: Pod;
  let serviceIp: string;

  beforeAll(async () => {
    [mesh, plain] = await Promise.all([
      createNamespace('e2e-mesh', { 'istio-injection': 'enabled' }),
      createNamespace('e2e-plain'),
    ]);
    await apply(echoDeployment(mesh, target.demoImage));
    await apply(echoService(mesh));
    await apply(clientPod(mesh, 'client', target.demoImage));
    await apply(clientPod(plain, 'plain-client', target.demoImage));
    await apply(plainEchoPod(plain, target.demoImage));
    await must(['-n', mesh, 'rollout', 'status', 'deployment/echo', '--timeout=240s']);
    const [echo] = await podsWithLabel(mesh, 'app=echo');
    if (!echo?.status.podIP) throw new Error('the echo server has no pod IP');
    server = echo;
    // Created once the server's address is known: it sends that address, and the bypass port, around its proxy.
    await apply(
      clientPod(mesh, 'bypass-client', target.demoImage, {
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': `${server.status.podIP}/32`,
        'traffic.sidecar.istio.io/excludeOutboundPorts': String(BYPASS_PORT),
      }),
    );
    await must([
      'wait',
      '--for=condition=Ready',
      '--timeout=240s',
      `pod/client`,
      `pod/bypass-client`,
      '-n',
      mesh,
    ]);
    await must([
      'wait',
      '--for=condition=Ready',
      '--timeout=240s',
      'pod/plain-client',
      'pod/plain-echo',
      '-n',
      plain,
    ]);
    serviceIp = (
      await must(['-n', mesh, 'get', 'service', 'echo', '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim();
  });

  afterAll(async () => {
    await Promise.all([deleteNamespace(mesh), deleteNamespace(plain)]);
  });

  it('injects the server Deployment and the client pod with istio-init and istio-proxy', async () => {
    for (const pod of [server, await getPod(mesh, 'client')]) {
      expect(pod.spec.initContainers?.map((container) => container.name)).toEqual(['istio-init']);
      expect(pod.spec.containers.map((container) => container.name)).toContain('istio-proxy');
      expect(pod.metadata.annotations?.['sidecar.istio.io/status']).toContain('istio-proxy');
    }
  });

  it('runs istio-init (mesh-iptables from the init image) with only NET_ADMIN and NET_RAW, and it exits 0', async () => {
    for (const pod of [await getPod(mesh, server.metadata.name), await getPod(mesh, 'client')]) {
      const init = pod.spec.initContainers?.find((container) => container.name === 'istio-init');
      expect(init?.command).toEqual(['mesh-iptables']);
      expect(init?.securityContext?.capabilities?.add?.sort()).toEqual(['NET_ADMIN', 'NET_RAW']);
      expect(init?.securityContext?.capabilities?.drop).toEqual(['ALL']);
      const status = pod.status.initContainerStatuses?.find((container) => container.name === 'istio-init');
      expect(status?.state.terminated?.exitCode).toBe(0);
      expect(status?.state.terminated?.reason).toBe('Completed');
    }
  });

  it('starts the proxy, which becomes Ready, and the app containers, all Ready', async () => {
    for (const pod of [await getPod(mesh, server.metadata.name), await getPod(mesh, 'client')]) {
      const statuses = pod.status.containerStatuses ?? [];
      const proxy = statuses.find((status) => status.name === 'istio-proxy');
      const init = pod.status.initContainerStatuses?.find((status) => status.name === 'istio-init');
      expect(proxy?.ready).toBe(true);
      expect(statuses.every((status) => status.ready && status.state.running)).toBe(true);
      // Every container starts after istio-init has set up the capture.
      for (const status of statuses) {
        expect(Date.parse(status.state.running?.startedAt ?? '')).toBeGreaterThanOrEqual(
          Date.parse(init?.state.terminated?.finishedAt ?? ''),
        );
      }
    }
  });

  it('sends client → server by pod IP out through the client proxy (15001) and in through the server proxy (15006)', async () => {
    const seen = await requestsThroughProxies('client', `http://${server.status.podIP}:${ECHO_PORT}/`);
    expect(seen).toEqual({
      peers: [INBOUND_PROXY_ADDRESS],
      clientOutbound: REQUESTS,
      serverInbound: REQUESTS,
    });
  });

  it('sends client → server by ClusterIP Service the same way', async () => {
    const seen = await requestsThroughProxies('client', `http://${serviceIp}:${ECHO_PORT}/`);
    expect(seen).toEqual({
      peers: [INBOUND_PROXY_ADDRESS],
      clientOutbound: REQUESTS,
      serverInbound: REQUESTS,
    });
  });

  it('captures each hop once: the proxies’ own connections are not captured again', async () => {
    // Were the client proxy's upstream connection captured again, it would loop into 15001 and count twice (or
    // never reach the server); were the server proxy's connection to the app, the app would see the proxy twice.
    const seen = await requestsThroughProxies('client', `http://${server.status.podIP}:${ECHO_PORT}/`);
    expect(seen.clientOutbound).toBe(REQUESTS);
    expect(seen.serverInbound).toBe(REQUESTS);
    expect(seen.peers).toEqual([INBOUND_PROXY_ADDRESS]);
  });

  it('lets excluded ports bypass both proxies (excludeOutboundPorts, excludeInboundPorts)', async () => {
    const bypass = await getPod(mesh, 'bypass-client');
    const seen = await requestsThroughProxies(
      'bypass-client',
      `http://${server.status.podIP}:${BYPASS_PORT}/`,
    );
    expect(seen).toEqual({ peers: [bypass.status.podIP], clientOutbound: 0, serverInbound: 0 });
  });

  it('lets an excluded CIDR bypass the client proxy (excludeOutboundIPRanges); the server still captures inbound', async () => {
    const seen = await requestsThroughProxies('bypass-client', `http://${server.status.podIP}:${ECHO_PORT}/`);
    expect(seen).toEqual({ peers: [INBOUND_PROXY_ADDRESS], clientOutbound: 0, serverInbound: REQUESTS });
  });

  it('leaves a pod in an unlabelled namespace untouched, and its traffic goes direct', async () => {
    const [client, echo] = await Promise.all([getPod(plain, 'plain-client'), getPod(plain, 'plain-echo')]);
    for (const pod of [client, echo]) {
      expect(pod.spec.initContainers ?? []).toEqual([]);
      expect(pod.spec.containers.map((container) => container.name)).not.toContain('istio-proxy');
      expect(pod.metadata.annotations?.['sidecar.istio.io/status']).toBeUndefined();
    }
    const answer = await curlFrom(plain, 'plain-client', `http://${echo.status.podIP}:${ECHO_PORT}/`);
    expect(stripPeer(answer)).toBe(client.status.podIP);
  });

  /** REQUESTS requests from the client pod, and what each proxy's listener and the server saw meanwhile. */
  async function requestsThroughProxies(
    client: string,
    url: string,
  ): Promise<{ peers: string[]; clientOutbound: number; serverInbound: number }> {
    const counters = () =>
      Promise.all([
        listenerConnections(mesh, client, OUTBOUND_LISTENER),
        listenerConnections(mesh, server.metadata.name, INBOUND_LISTENER),
      ]);
    const [outBefore, inBefore] = await counters();
    const peers = new Set<string>();
    for (let i = 0; i < REQUESTS; i++) peers.add(stripPeer(await curlFrom(mesh, client, url)));
    const after = await counters();
    return { peers: [...peers], clientOutbound: after[0] - outBefore, serverInbound: after[1] - inBefore };
  }
});

function stripPeer(answer: string): string {
  const match = /^peer=(.*)$/m.exec(answer);
  if (!match?.[1]) throw new Error(`the echo server answered ${JSON.stringify(answer)}, not peer=<address>`);
  return match[1];
}
