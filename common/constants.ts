/**
 * The sidecar contract: every port, identity, name and label that the webhook, the init program, the manifests'
 * generators and the tests must agree on. Change a value here and every part follows.
 */

/** The proxy's identity. Capture rules exempt traffic owned by this uid/gid so the proxy's own connections pass. */
export const PROXY_UID = 1337;
export const PROXY_GID = 1337;

export const PORTS = {
  /** Outbound capture: iptables redirects the app's outgoing TCP here. */
  outboundCapture: 15001,
  /** Inbound capture: iptables redirects incoming TCP here. */
  inboundCapture: 15006,
  /** HBONE tunnel port; excluded from capture (istio-iptables `-e`). */
  inboundTunnel: 15008,
  /** Proxy admin interface, bound to 127.0.0.1 only. */
  proxyAdmin: 15000,
  /** Pilot-agent style status port: merged Prometheus metrics and app probe rewrites. */
  status: 15020,
  /** Proxy readiness (`/healthz/ready`). */
  readiness: 15021,
  /** Proxy Prometheus stats (`/stats/prometheus`). */
  proxyStats: 15090,
  /** The agent's DNS listener, where captured DNS goes (Istio's IstioAgentDNSListenerPort). */
  dnsCapture: 15053,
  /** istio-iptables' --iptables-probe-port (for its --run-validation, which mesh-iptables does not support). */
  iptablesProbe: 15002,
} as const;

/** Plain DNS, the port DNS capture matches. */
export const DNS_PORT = 53;

/** The mark TPROXY mode puts on the proxy's own loopback traffic (Istio's OutboundMark). */
export const OUTBOUND_MARK = 1338;

/** TPROXY mode's default packet mark (istio-iptables `-t`) and the policy routing table for it (`-r`). */
export const TPROXY_MARK = 1337;
export const TPROXY_ROUTE_TABLE = 133;

/** The loopback destinations the capture rules exempt (ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR's default, and IPv6's). */
export const IPV4_LOOPBACK_CIDR = '127.0.0.1/32';
export const IPV6_LOOPBACK_CIDR = '::1/128';

/** The user the proxy runs as (Istio's ENVOY_USER default); its uid is the default proxy uid when it exists. */
export const PROXY_USER_NAME = 'istio-proxy';

/** Source address the proxy binds for inbound upstream connections, so capture rules can tell them apart. */
export const INBOUND_PASSTHROUGH_SOURCE_IPV4 = '127.0.0.6';
export const INBOUND_PASSTHROUGH_SOURCE_IPV6 = '::6';

/** The nat chains the init program owns. Nothing else may create chains with the ISTIO_ prefix. */
export const CHAINS = {
  inbound: 'ISTIO_INBOUND',
  inRedirect: 'ISTIO_IN_REDIRECT',
  output: 'ISTIO_OUTPUT',
  redirect: 'ISTIO_REDIRECT',
  divert: 'ISTIO_DIVERT',
  tproxy: 'ISTIO_TPROXY',
  drop: 'ISTIO_DROP',
  /** nat and raw: the DNS capture rules. */
  outputDns: 'ISTIO_OUTPUT_DNS',
} as const;
export const CHAIN_PREFIX = 'ISTIO_';

export const CONTAINER_NAMES = {
  init: 'istio-init',
  proxy: 'istio-proxy',
} as const;

/** Namespaces Istio's injector never injects into, whatever the labels say. */
export const IGNORED_NAMESPACES: readonly string[] = [
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'local-path-storage',
];

export const LABELS = {
  /** Namespace label selecting the default revision (evaluated by the MutatingWebhookConfiguration only). */
  injection: 'istio-injection',
  revision: 'istio.io/rev',
  /** Pod label (preferred) or annotation (deprecated): exactly "true" or "false". */
  inject: 'sidecar.istio.io/inject',
  tlsMode: 'security.istio.io/tlsMode',
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
} as const;

export const ANNOTATIONS = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  /** The pod's own customisations of the injected containers, kept for re-injection (JSON). */
  overrides: 'proxy.istio.io/overrides',
  proxyConfig: 'proxy.istio.io/config',
  templates: 'inject.istio.io/templates',
  revision: 'istio.io/rev',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  excludeInterfaces: 'traffic.sidecar.istio.io/excludeInterfaces',
  kubevirtInterfaces: 'traffic.sidecar.istio.io/kubevirtInterfaces',
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
  statusPort: 'status.sidecar.istio.io/port',
  readinessInitialDelaySeconds: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriodSeconds: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  proxyImage: 'sidecar.istio.io/proxyImage',
  logLevel: 'sidecar.istio.io/logLevel',
  componentLogLevel: 'sidecar.istio.io/componentLogLevel',
  agentLogLevel: 'sidecar.istio.io/agentLogLevel',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  mergeMetrics: 'prometheus.istio.io/merge-metrics',
  rewriteAppProbes: 'sidecar.istio.io/rewriteAppHTTPProbers',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  defaultLogsContainer: 'kubectl.kubernetes.io/default-logs-container',
  prometheusScrape: 'prometheus.io/scrape',
  prometheusPort: 'prometheus.io/port',
  prometheusPath: 'prometheus.io/path',
} as const;

/** The name of the MutatingWebhookConfiguration this project installs and manages. */
export const WEBHOOK_CONFIGURATION_NAME = 'mesh-injector';
export const INJECT_PATH = '/inject';

/** The largest admission request the webhook reads: the apiserver may send the old and the new object of up to 3 MiB each. */
export const BODY_LIMIT_BYTES = 7 * 1024 * 1024;

/**
 * The webhook container's environment variables naming the images it injects. They sit in the Deployment, where a
 * kustomize overlay's `images:` rewrites them (manifests/kustomizeconfig.yaml), and override values.yaml's `images`.
 */
export const IMAGE_ENV = {
  proxy: 'MESH_INJECTOR_PROXY_IMAGE',
  init: 'MESH_INJECTOR_INIT_IMAGE',
} as const;
