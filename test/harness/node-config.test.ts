import { describe, expect, it } from 'vitest';
import {
  cniConflist,
  containerdConfig,
  kubeApiserverFlags,
  kubeletFlags,
  nodeAddresses,
  nodePaths,
  pkiFiles,
  toArgs,
} from './node-config.js';

const paths = nodePaths('/tmp/mesh-node-abc');
const addresses = nodeAddresses(7);
const pki = pkiFiles(paths.pki);

describe('node configuration', () => {
  it('gives block n its own /24s for the link, the pods and the Services', () => {
    expect(addresses).toEqual({
      hostIp: '10.231.7.1',
      nodeIp: '10.231.7.2',
      linkPrefix: 24,
      podCidr: '10.232.7.0/24',
      serviceCidr: '10.233.7.0/24',
      kubernetesServiceIp: '10.233.7.1',
    });
    expect(() => nodeAddresses(256)).toThrow('not in 0-255');
  });

  it('keeps containerd to its own root, state, socket and runc root, with the local pause image', () => {
    const config = containerdConfig(paths, 'localhost/mesh-pause:dev');
    expect(config).toContain('root = "/tmp/mesh-node-abc/containerd/root"');
    expect(config).toContain('state = "/tmp/mesh-node-abc/containerd/state"');
    expect(config).toContain('address = "/tmp/mesh-node-abc/containerd.sock"');
    expect(config).toContain('Root = "/tmp/mesh-node-abc/containerd/runc"');
    expect(config).toContain('sandbox_image = "localhost/mesh-pause:dev"');
    expect(config).toContain('restrict_oom_score_adj = true');
    expect(config).toContain('conf_dir = "/tmp/mesh-node-abc/cni/net.d"');
  });

  it('puts pods on a bridge that is their gateway, with addresses from the pod /24 kept in its own folder', () => {
    const conflist = JSON.parse(cniConflist('mesh-node-abc', addresses, paths)) as {
      name: string;
      plugins: { type: string; isGateway?: boolean; ipMasq?: boolean; ipam?: Record<string, unknown> }[];
    };
    expect(conflist.name).toBe('mesh-node-abc');
    expect(conflist.plugins.map((plugin) => plugin.type)).toEqual(['bridge', 'portmap']);
    expect(conflist.plugins[0]).toMatchObject({ isGateway: true, ipMasq: false });
    expect(conflist.plugins[0]?.ipam).toMatchObject({
      ranges: [[{ subnet: '10.232.7.0/24' }]],
      dataDir: '/tmp/mesh-node-abc/cni/ipam',
    });
  });

  it('advertises the node IP and routes webhook calls to endpoints', () => {
    const flags = kubeApiserverFlags(addresses, pki);
    expect(flags).toMatchObject({
      'advertise-address': '10.231.7.2',
      'enable-aggregator-routing': 'true',
      'kubelet-preferred-address-types': 'InternalIP',
      'service-cluster-ip-range': '10.233.7.0/24',
      'authorization-mode': 'Node,RBAC',
    });
  });

  it('runs the kubelet on the remote runtime with cgroupfs, no eviction and no image garbage collection', () => {
    const args = toArgs(kubeletFlags(paths, addresses, pki, 'localhost/mesh-pause:dev'));
    expect(args).toEqual(
      expect.arrayContaining([
        '--container-runtime=remote',
        '--container-runtime-endpoint=unix:///tmp/mesh-node-abc/containerd.sock',
        '--cgroup-driver=cgroupfs',
        '--eviction-hard=',
        '--image-gc-high-threshold=100',
        '--node-ip=10.231.7.2',
        '--root-dir=/tmp/mesh-node-abc/kubelet',
        '--anonymous-auth=false',
      ]),
    );
  });
});
