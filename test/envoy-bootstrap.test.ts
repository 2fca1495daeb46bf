/**
 * The default proxy: Envoy with the static bootstrap in manifests/config/envoy.yaml. Envoy is not needed here: the
 * bootstrap is checked structurally against the sidecar contract (common/constants.ts), and then followed through
 * the webhook and the kubelet's $(VAR) expansion to the argument Envoy receives.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  CONTAINER_NAMES,
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  INBOUND_PASSTHROUGH_SOURCE_IPV6,
  PORTS,
} from '../common/constants.js';
import { CONFIG_FILES, parseConfig, readConfigFiles, type InjectorConfig } from '../webhook/config.js';
import { injectPod } from '../webhook/inject.js';
import { SHIPPED_CONFIG_DIR, typicalPod } from './fixtures/pods.js';
import { PROXY_HARDENING, proxyHardeningGaps } from './harness/sidecar-hardening.js';

// The subset of Envoy's v3 bootstrap that this file reads.
interface SocketAddress {
  address: string;
  port_value: number;
}
interface Address {
  socket_address: SocketAddress;
}
interface TypedExtension {
  name: string;
  typed_config: Record<string, unknown> & { '@type': string };
}
interface Route {
  match: { path?: string; prefix?: string };
  route: { cluster: string; prefix_rewrite?: string };
}
interface FilterChain {
  name?: string;
  filter_chain_match?: { destination_port?: number };
  filters: TypedExtension[];
}
interface Listener {
  name: string;
  address: Address;
  additional_addresses?: { address: Address }[];
  listener_filters?: TypedExtension[];
  filter_chains: FilterChain[];
}
interface Cluster {
  name: string;
  type: string;
  lb_policy?: string;
  upstream_bind_config?: {
    source_address: SocketAddress;
    extra_source_addresses?: { address: SocketAddress }[];
  };
  load_assignment?: {
    endpoints: { lb_endpoints: { endpoint: { address: Address } }[] }[];
  };
  circuit_breakers?: { thresholds: Record<string, number>[] };
}
interface Bootstrap {
  admin: { address: Address };
  static_resources: { listeners: Listener[]; clusters: Cluster[] };
  dynamic_resources?: unknown;
}

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HTTP_CONNECTION_MANAGER =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ORIGINAL_DST_FILTER = 'envoy.filters.listener.original_dst';
const BOOTSTRAP_ENV = 'MESH_PROXY_BOOTSTRAP';

let text: string;
let bootstrap: Bootstrap;

beforeAll(async () => {
  text = await readFile(join(SHIPPED_CONFIG_DIR, CONFIG_FILES.proxyBootstrap), 'utf8');
  bootstrap = parseYaml(text) as Bootstrap;
});

function listenerOn(port: number): Listener {
  const found = bootstrap.static_resources.listeners.filter(
    (l) => l.address.socket_address.port_value === port,
  );
  expect(found, `listeners on port ${port}`).toHaveLength(1);
  return found[0] as Listener;
}

function cluster(name: string): Cluster {
  const found = bootstrap.static_resources.clusters.find((c) => c.name === name);
  if (!found) throw new Error(`the bootstrap has no cluster ${name}`);
  return found;
}

/** Every address a listener binds, as "host:port". */
function boundAddresses(listener: Listener): string[] {
  const all = [listener.address, ...(listener.additional_addresses ?? []).map((a) => a.address)];
  return all.map(({ socket_address: s }) => `${s.address}:${s.port_value}`);
}

/** The cluster a tcp_proxy filter chain sends to. */
function tcpProxyCluster(chain: FilterChain): string {
  expect(chain.filters).toHaveLength(1);
  const filter = chain.filters[0] as TypedExtension;
  expect(filter.typed_config['@type']).toBe(TCP_PROXY);
  return filter.typed_config.cluster as string;
}

/** The routes of a listener's single http_connection_manager. */
function httpRoutes(listener: Listener): Route[] {
  expect(listener.filter_chains).toHaveLength(1);
  const filters = listener.filter_chains[0]?.filters ?? [];
  expect(filters.map((f) => f.typed_config['@type'])).toEqual([HTTP_CONNECTION_MANAGER]);
  const config = filters[0]?.typed_config as unknown as {
    route_config: { virtual_hosts: { domains: string[]; routes: Route[] }[] };
  };
  expect(config.route_config.virtual_hosts.map((host) => host.domains)).toEqual([['*']]);
  return config.route_config.virtual_hosts.flatMap((host) => host.routes);
}

function expectCaptureListener(port: number, passthrough: string): Cluster {
  const listener = listenerOn(port);
  expect(boundAddresses(listener)).toEqual([`0.0.0.0:${port}`, `:::${port}`]);
  expect((listener.listener_filters ?? []).map((f) => f.name)).toEqual([ORIGINAL_DST_FILTER]);
  // Envoy picks the most specific chain: a connection addressed to the capture port itself goes nowhere.
  const [blackhole, catchAll, ...rest] = listener.filter_chains;
  expect(rest).toEqual([]);
  expect(blackhole?.filter_chain_match).toEqual({ destination_port: port });
  expect(tcpProxyCluster(blackhole as FilterChain)).toBe('BlackHoleCluster');
  expect(cluster('BlackHoleCluster').load_assignment).toBeUndefined();
  expect(catchAll?.filter_chain_match).toBeUndefined();
  expect(tcpProxyCluster(catchAll as FilterChain)).toBe(passthrough);
  const target = cluster(passthrough);
  expect(target.type).toBe('ORIGINAL_DST');
  expect(target.lb_policy).toBe('CLUSTER_PROVIDED');
  // Envoy's default of 1024 connections would cap all of the pod's traffic.
  expect(target.circuit_breakers?.thresholds[0]?.max_connections).toBe(4294967295);
  return target;
}

describe('the proxy bootstrap (manifests/config/envoy.yaml)', () => {
  it('is static: listeners and clusters only, no control plane', () => {
    expect(bootstrap.dynamic_resources).toBeUndefined();
    expect(text).not.toMatch(/\bads\b|xds|_config_source|lds_config|cds_config/);
    const clusterNames = bootstrap.static_resources.clusters.map((c) => c.name);
    expect(new Set(clusterNames).size).toBe(clusterNames.length);
  });

  it('sends every listener to a cluster it defines', () => {
    const clusterNames = new Set(bootstrap.static_resources.clusters.map((c) => c.name));
    const targets = bootstrap.static_resources.listeners.flatMap((listener) =>
      listener.filter_chains.flatMap((chain) =>
        chain.filters.flatMap((filter) =>
          filter.typed_config['@type'] === TCP_PROXY
            ? [filter.typed_config.cluster as string]
            : httpRoutes(listener).map((route) => route.route.cluster),
        ),
      ),
    );
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(clusterNames, `cluster ${target}`).toContain(target);
  });

  it('listens on exactly the sidecar ports of the contract, and nowhere else', () => {
    const ports = bootstrap.static_resources.listeners.map((l) => l.address.socket_address.port_value);
    expect(ports.sort()).toEqual(
      [PORTS.outboundCapture, PORTS.inboundCapture, PORTS.proxyStats, PORTS.readiness].sort(),
    );
  });

  it('captures outbound TCP on 0.0.0.0:15001 and [::]:15001 and passes it to its original destination', () => {
    const passthrough = expectCaptureListener(PORTS.outboundCapture, 'PassthroughCluster');
    // The proxy's own connections are exempt from capture by its uid, not by their source address.
    expect(passthrough.upstream_bind_config).toBeUndefined();
  });

  it('captures inbound TCP on 0.0.0.0:15006 and [::]:15006 and reaches the app from 127.0.0.6 (::6 on IPv6)', () => {
    const passthrough = expectCaptureListener(PORTS.inboundCapture, 'InboundPassthroughCluster');
    expect(passthrough.upstream_bind_config).toEqual({
      source_address: { address: INBOUND_PASSTHROUGH_SOURCE_IPV4, port_value: 0 },
      extra_source_addresses: [{ address: { address: INBOUND_PASSTHROUGH_SOURCE_IPV6, port_value: 0 } }],
    });
  });

  it('serves the admin interface on 127.0.0.1:15000 only', () => {
    expect(bootstrap.admin.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: PORTS.proxyAdmin },
    });
    const admin = cluster('admin');
    expect(admin.type).toBe('STATIC');
    const endpoints = admin.load_assignment?.endpoints.flatMap((e) => e.lb_endpoints) ?? [];
    expect(endpoints.map((e) => e.endpoint.address)).toEqual([bootstrap.admin.address]);
  });

  it("serves Prometheus on 0.0.0.0:15090 and [::]:15090 at /stats/prometheus only, from the admin's stats", () => {
    const listener = listenerOn(PORTS.proxyStats);
    expect(boundAddresses(listener)).toEqual([`0.0.0.0:${PORTS.proxyStats}`, `:::${PORTS.proxyStats}`]);
    expect(httpRoutes(listener)).toEqual([
      { match: { path: '/stats/prometheus' }, route: { cluster: 'admin' } },
    ]);
  });

  it("answers readiness on 0.0.0.0:15021 and [::]:15021 at /healthz/ready with the admin's /ready", () => {
    const listener = listenerOn(PORTS.readiness);
    expect(boundAddresses(listener)).toEqual([`0.0.0.0:${PORTS.readiness}`, `:::${PORTS.readiness}`]);
    expect(httpRoutes(listener)).toEqual([
      { match: { path: '/healthz/ready' }, route: { cluster: 'admin', prefix_rewrite: '/ready' } },
    ]);
  });

  it('contains no $, which the kubelet would expand in the env var and the argument', () => {
    expect(text).not.toContain('$');
  });
});

/**
 * The kubelet's expansion of env values and args (Kubernetes' third_party/forked/golang/expansion): `$$` is `$`,
 * `$(NAME)` is the variable's value when it is defined and stays as written otherwise.
 */
function kubeletExpand(input: string, variables: ReadonlyMap<string, string>): string {
  let output = '';
  for (let i = 0; i < input.length; i++) {
    const next = input[i + 1];
    if (input[i] !== '$' || next === undefined) {
      output += input[i];
    } else if (next === '$') {
      output += '$';
      i++;
    } else if (next === '(' && input.indexOf(')', i + 2) !== -1) {
      const end = input.indexOf(')', i + 2);
      const name = input.slice(i + 2, end);
      output += variables.get(name) ?? `$(${name})`;
      i = end;
    } else {
      output += `$${next}`;
      i++;
    }
  }
  return output;
}

/** What the container runs once the kubelet has expanded its env values (in order) and its args. */
function containerArgv(container: V1Container): string[] {
  const variables = new Map<string, string>();
  for (const env of container.env ?? []) {
    if (env.value !== undefined) variables.set(env.name, kubeletExpand(env.value, variables));
  }
  return [...(container.command ?? []), ...(container.args ?? [])].map((arg) =>
    kubeletExpand(arg, variables),
  );
}

describe('the bootstrap in an injected pod', () => {
  let config: InjectorConfig;

  beforeAll(async () => {
    config = parseConfig(await readConfigFiles(SHIPPED_CONFIG_DIR));
  });

  function injectedProxy(nativeSidecars: boolean): V1Container {
    const result = injectPod(typicalPod(), 'shop', { ...config, nativeSidecars });
    if (result.outcome !== 'injected') throw new Error(result.message);
    const pod: V1Pod = result.pod;
    const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    const proxies = all.filter((c) => c.name === CONTAINER_NAMES.proxy);
    expect(proxies).toHaveLength(1);
    return proxies[0] as V1Container;
  }

  for (const nativeSidecars of [false, true]) {
    describe(nativeSidecars ? 'as a native sidecar' : 'as a classic sidecar', () => {
      it(`carries envoy.yaml in ${BOOTSTRAP_ENV} as one line of JSON, without its comments`, () => {
        const proxy = injectedProxy(nativeSidecars);
        const env = (proxy.env ?? []).filter((e) => e.name === BOOTSTRAP_ENV);
        expect(env).toHaveLength(1);
        expect(env[0]?.value).not.toContain('\n');
        expect(JSON.parse(env[0]?.value ?? '')).toEqual(bootstrap);
      });

      it('hands Envoy the same bootstrap after the kubelet expands its arguments', () => {
        const argv = containerArgv(injectedProxy(nativeSidecars));
        expect(argv[0]).toBe('envoy');
        const flag = argv.indexOf('--config-yaml');
        expect(flag).toBeGreaterThan(0);
        expect(argv.filter((arg) => arg === '--config-yaml')).toHaveLength(1);
        expect(parseYaml(argv[flag + 1] ?? '')).toEqual(bootstrap);
        expect(argv).not.toContain('--config-path');
      });

      it("probes and scrapes the bootstrap's readiness and stats listeners", () => {
        const proxy = injectedProxy(nativeSidecars);
        expect(proxy.readinessProbe?.httpGet).toEqual({ path: '/healthz/ready', port: PORTS.readiness });
        expect(proxy.startupProbe?.httpGet).toEqual({ path: '/healthz/ready', port: PORTS.readiness });
        expect(proxy.ports?.map((p) => p.containerPort)).toEqual([PORTS.proxyStats]);
      });

      it('runs the proxy as 1337:1337, non-root, read-only, with no privilege and no capability', () => {
        const proxy = injectedProxy(nativeSidecars);
        expect(proxyHardeningGaps(proxy.securityContext)).toEqual([]);
        // Nothing beyond the hardening and the runtime's default seccomp profile.
        expect(proxy.securityContext).toEqual({
          ...PROXY_HARDENING,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
      });
    });
  }

  it('pins the official Envoy image to a release', () => {
    expect(config.values.images.proxy).toMatch(/^docker\.io\/envoyproxy\/envoy:v1\.\d+\.\d+$/);
  });
});
