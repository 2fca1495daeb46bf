/**
 * The node's network namespace: `lo`, a veth whose inner end carries the node IP and whose host end lets the
 * machine reach that IP, and no default route (with one, the apiserver's lookups of the node name left the
 * namespace for the machine's resolver). Forwarding and bridge netfilter are set inside it, per namespace.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { NodeAddresses } from './node-config.js';
import { nodeAddresses } from './node-config.js';

export interface NodeNetwork {
  /** The namespace's name under /var/run/netns. */
  name: string;
  /** /var/run/netns/NAME, for `nsenter --net=`. */
  path: string;
  /** The veth's end on the machine (its peer inside is `eth0`). */
  hostVeth: string;
  addresses: NodeAddresses;
  /** Deletes the namespace and the veth; safe to call more than once. */
  remove(): Promise<void>;
}

export async function createNodeNetwork(): Promise<NodeNetwork> {
  const id = randomBytes(3).toString('hex');
  const name = `mesh-node-${id}`;
  const hostVeth = `mnode${id}`;
  const addresses = nodeAddresses(await freeAddressBlock());
  const path = `/var/run/netns/${name}`;
  const remove = async (): Promise<void> => {
    await execa('ip', ['link', 'delete', hostVeth], { reject: false });
    if (existsSync(path)) await ip(['netns', 'delete', name]);
  };
  try {
    await ip(['netns', 'add', name]);
    await ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
    await ip(['address', 'add', `${addresses.hostIp}/${addresses.linkPrefix}`, 'dev', hostVeth]);
    await ip(['link', 'set', hostVeth, 'up']);
    const inside = (args: string[]) => ip(['-netns', name, ...args]);
    await inside(['link', 'set', 'lo', 'up']);
    await inside(['address', 'add', `${addresses.nodeIp}/${addresses.linkPrefix}`, 'dev', 'eth0']);
    await inside(['link', 'set', 'eth0', 'up']);
    await execa('nsenter', [
      `--net=${path}`,
      '--',
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.bridge.bridge-nf-call-iptables=1',
    ]);
    return { name, path, hostVeth, addresses, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** A 10.231.n.0/24 block no route on the machine already uses (two clusters may run side by side). */
async function freeAddressBlock(): Promise<number> {
  const { stdout } = await execa('ip', ['-4', 'route', 'show', 'table', 'all']);
  const used = new Set([...stdout.matchAll(/\b10\.231\.(\d+)\./g)].map((match) => Number(match[1])));
  const start = randomBytes(1)[0] ?? 0;
  for (let i = 0; i < 256; i++) {
    const n = (start + i) % 256;
    if (!used.has(n)) return n;
  }
  throw new Error('no free 10.231.n.0/24 block for the node network');
}

async function ip(args: string[]): Promise<void> {
  const result = await execa('ip', args, { reject: false });
  if (result.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim()}`);
}
