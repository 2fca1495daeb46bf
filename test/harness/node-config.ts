/**
 * The node cluster's configuration, as pure functions of its addresses and paths: containerd's config, the CNI
 * network, and each Kubernetes process's flags (the recipe in ../shared/reference/real-node.md, v1.20.2).
 */
import { join } from 'node:path';

/** One cluster's addresses: a /24 for the node's link, one for pods (the CNI bridge), one for Services. */
export interface NodeAddresses {
  /** The host's end of the veth; the machine reaches the node through it. */
  hostIp: string;
  /** The node's end of the veth: kube-apiserver's advertise address, the kubelet's InternalIP. */
  nodeIp: string;
  /** The prefix length of the host-node link. */
  linkPrefix: number;
  podCidr: string;
  serviceCidr: string;
  /** The first address of serviceCidr: the `kubernetes` Service. */
  kubernetesServiceIp: string;
}

/** Addresses for block `n` (0-255): 10.231.n.0/24 for the link, 10.232.n.0/24 for pods, 10.233.n.0/24 for Services. */
export function nodeAddresses(n: number): NodeAddresses {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`address block ${n} is not in 0-255`);
  return {
    hostIp: `10.231.${n}.1`,
    nodeIp: `10.231.${n}.2`,
    linkPrefix: 24,
    podCidr: `10.232.${n}.0/24`,
    serviceCidr: `10.233.${n}.0/24`,
    kubernetesServiceIp: `10.233.${n}.1`,
  };
}

export const NODE_NAME = 'mesh-node';
export const APISERVER_PORT = 6443;
export const ETCD_URL = 'http://127.0.0.1:2379';

/** Every file and folder of one cluster, under its temporary directory. */
export interface NodePaths {
  dir: string;
  pki: string;
  etcdData: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  runcRoot: string;
  optDir: string;
  cniConfDir: string;
  cniIpamDir: string;
  kubeletRoot: string;
  kubeletCertDir: string;
  kubeletVolumePlugins: string;
  kubeconfigs: string;
  /** The admin kubeconfig, pointing at the node IP: it works from the machine, outside the namespace. */
  adminKubeconfig: string;
}

/** `containerdRoot`: a root kept between clusters (test/harness/containerd-root.ts); else one under `dir`. */
export function nodePaths(dir: string, containerdRoot?: string): NodePaths {
  const containerd = join(dir, 'containerd');
  return {
    dir,
    pki: join(dir, 'pki'),
    etcdData: join(dir, 'etcd'),
    containerdConfig: join(containerd, 'config.toml'),
    containerdRoot: containerdRoot ?? join(containerd, 'root'),
    containerdState: join(containerd, 'state'),
    // A unix socket path may hold 107 bytes: keep it short and directly under the temporary directory.
    containerdSocket: join(dir, 'containerd.sock'),
    runcRoot: join(containerd, 'runc'),
    optDir: join(containerd, 'opt'),
    cniConfDir: join(dir, 'cni', 'net.d'),
    cniIpamDir: join(dir, 'cni', 'ipam'),
    kubeletRoot: join(dir, 'kubelet'),
    kubeletCertDir: join(dir, 'kubelet', 'pki'),
    kubeletVolumePlugins: join(dir, 'kubelet-volume-plugins'),
    kubeconfigs: join(dir, 'kubeconfigs'),
    adminKubeconfig: join(dir, 'kubeconfig'),
  };
}

/**
 * containerd's own config: its own root, state, socket and runc root, so nothing collides with another containerd.
 * restrict_oom_score_adj: this machine may not lower oom_score_adj, and the kubelet asks for -998 for every sandbox.
 */
export function containerdConfig(paths: NodePaths, pauseImage: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = ${toml(paths.containerdRoot)}
state = ${toml(paths.containerdState)}

[grpc]
  address = ${toml(paths.containerdSocket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(paths.optDir)}

[${cri}]
  sandbox_image = ${toml(pauseImage)}
  restrict_oom_score_adj = true
  # The pods' network namespaces under the state dir, not /var/run/netns: stop() unmounts them with the rest.
  netns_mounts_under_state_dir = true

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  Root = ${toml(paths.runcRoot)}

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${toml(paths.cniConfDir)}
`;
}

/** The pods' network: a bridge that is their gateway, host-local addresses from the pod /24, and portmap. */
export function cniConflist(name: string, addresses: NodeAddresses, paths: NodePaths): string {
  return `${JSON.stringify(
    {
      cniVersion: '0.4.0',
      name,
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: addresses.podCidr }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: paths.cniIpamDir,
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

export interface PkiFiles {
  servingCa: string;
  servingCert: string;
  servingKey: string;
  clientCa: string;
  clientCaKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
}

export function pkiFiles(pki: string): PkiFiles {
  return {
    servingCa: join(pki, 'serving-ca.crt'),
    servingCert: join(pki, 'apiserver.crt'),
    servingKey: join(pki, 'apiserver.key'),
    clientCa: join(pki, 'client-ca.crt'),
    clientCaKey: join(pki, 'client-ca.key'),
    serviceAccountPublicKey: join(pki, 'sa.pub'),
    serviceAccountPrivateKey: join(pki, 'sa.key'),
    kubeletClientCert: join(pki, 'apiserver-kubelet-client.crt'),
    kubeletClientKey: join(pki, 'apiserver-kubelet-client.key'),
  };
}

export type Flags = Record<string, string>;

export function toArgs(flags: Flags): string[] {
  return Object.entries(flags).map(([name, value]) => `--${name}=${value}`);
}

export function etcdFlags(paths: NodePaths): Flags {
  return {
    name: 'default',
    'data-dir': paths.etcdData,
    'listen-client-urls': ETCD_URL,
    'advertise-client-urls': ETCD_URL,
    'listen-peer-urls': 'http://127.0.0.1:2380',
    'initial-advertise-peer-urls': 'http://127.0.0.1:2380',
    'initial-cluster': 'default=http://127.0.0.1:2380',
    logger: 'zap',
  };
}

export function kubeApiserverFlags(addresses: NodeAddresses, pki: PkiFiles): Flags {
  return {
    'advertise-address': addresses.nodeIp,
    'bind-address': '0.0.0.0',
    'secure-port': String(APISERVER_PORT),
    'etcd-servers': ETCD_URL,
    'cert-dir': join(pki.servingCert, '..'),
    'tls-cert-file': pki.servingCert,
    'tls-private-key-file': pki.servingKey,
    'client-ca-file': pki.clientCa,
    'service-account-issuer': 'https://kubernetes.default.svc',
    'service-account-key-file': pki.serviceAccountPublicKey,
    'service-account-signing-key-file': pki.serviceAccountPrivateKey,
    'service-cluster-ip-range': addresses.serviceCidr,
    'authorization-mode': 'Node,RBAC',
    'enable-admission-plugins': 'NodeRestriction',
    // Webhook Services are called at their endpoints (pod IPs), which the apiserver reaches over the CNI bridge.
    'enable-aggregator-routing': 'true',
    // For logs and exec: the node's name does not resolve.
    'kubelet-preferred-address-types': 'InternalIP',
    'kubelet-client-certificate': pki.kubeletClientCert,
    'kubelet-client-key': pki.kubeletClientKey,
  };
}

export function kubeControllerManagerFlags(kubeconfig: string, pki: PkiFiles): Flags {
  return {
    kubeconfig,
    'leader-elect': 'false',
    'bind-address': '127.0.0.1',
    port: '0',
    // Each controller with its own service account and RBAC role, as kubeadm runs it: the controller-manager's
    // own role alone cannot, e.g., lift the node's not-ready taint.
    'use-service-account-credentials': 'true',
    'service-account-private-key-file': pki.serviceAccountPrivateKey,
    'root-ca-file': pki.servingCa,
    'cluster-signing-cert-file': pki.clientCa,
    'cluster-signing-key-file': pki.clientCaKey,
  };
}

export function kubeSchedulerFlags(kubeconfig: string): Flags {
  return { kubeconfig, 'leader-elect': 'false', 'bind-address': '127.0.0.1', port: '0' };
}

export function kubeletFlags(
  paths: NodePaths,
  addresses: NodeAddresses,
  pki: PkiFiles,
  pauseImage: string,
): Flags {
  const runtime = `unix://${paths.containerdSocket}`;
  return {
    kubeconfig: join(paths.kubeconfigs, 'kubelet'),
    'hostname-override': NODE_NAME,
    'node-ip': addresses.nodeIp,
    'root-dir': paths.kubeletRoot,
    'cert-dir': paths.kubeletCertDir,
    'volume-plugin-dir': paths.kubeletVolumePlugins,
    'container-runtime': 'remote',
    'container-runtime-endpoint': runtime,
    'image-service-endpoint': runtime,
    'runtime-request-timeout': '5m',
    'pod-infra-container-image': pauseImage,
    'cgroup-driver': 'cgroupfs',
    'cgroups-per-qos': 'false',
    'enforce-node-allocatable': '',
    'fail-swap-on': 'false',
    // No eviction and no image garbage collection: the imported images cannot be pulled again.
    'eviction-hard': '',
    'image-gc-high-threshold': '100',
    'image-gc-low-threshold': '99',
    // The machine may not lower oom_score_adj.
    'oom-score-adj': '0',
    'client-ca-file': pki.clientCa,
    'anonymous-auth': 'false',
    'authorization-mode': 'AlwaysAllow',
    'read-only-port': '0',
    'healthz-bind-address': '127.0.0.1',
    'max-pods': '150',
    // The node turns Ready at the first status after the runtime is: every second rather than every ten (with a
    // node lease, an unchanged status is computed but not written).
    'node-status-update-frequency': '1s',
  };
}

export function kubeProxyFlags(kubeconfig: string, addresses: NodeAddresses): Flags {
  return {
    kubeconfig,
    'proxy-mode': 'iptables',
    'cluster-cidr': addresses.podCidr,
    'hostname-override': NODE_NAME,
    'bind-address': addresses.nodeIp,
    'metrics-bind-address': '127.0.0.1:10249',
    'healthz-bind-address': '127.0.0.1:10256',
    // 0 leaves the machine-wide conntrack settings alone.
    'conntrack-max-per-core': '0',
    'conntrack-tcp-timeout-established': '0',
    'conntrack-tcp-timeout-close-wait': '0',
    'oom-score-adj': '0',
  };
}

function toml(value: string): string {
  return JSON.stringify(value);
}
