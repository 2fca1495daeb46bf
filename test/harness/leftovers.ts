/**
 * What a node cluster leaves on the machine, for the tests that check stop() (and Ctrl-C, SIGTERM) removed it all:
 * processes, mounts, network namespaces, the veth, its temporary directory, and the files the kubelet, containerd
 * and the CNI plugins write outside it.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { execa } from 'execa';
import { mountsUnder, pidsWithArgument } from './node-cluster.js';
import { statFields, statName } from './proc.js';

/** The places outside the cluster's directory where the node's parts write, by their fixed paths. */
const SHARED_PLACES = ['/var/log/pods', '/var/log/containers', '/var/lib/cni/results', '/run/containerd/s'];

export interface ClusterTraces {
  dir: string;
  netnsName: string;
  hostVeth: string;
  /** A containerd root kept between clusters (test/harness/containerd-root.ts): no mount may stay under it. */
  containerdRoot?: string;
}

/** Everything of one cluster still present; empty when it is all gone. */
export async function leftovers(traces: ClusterTraces, sharedBefore: Set<string>): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await pidsWithArgument(traces.dir))
    found.push(`process ${pid}: ${await commandLine(pid)}`);
  for (const pid of await pidsWithArgument(traces.netnsName))
    found.push(`process ${pid}: ${await commandLine(pid)}`);
  for (const mountPoint of await mountsUnder(traces.dir)) found.push(`mount ${mountPoint}`);
  if (traces.containerdRoot !== undefined && traces.containerdRoot !== traces.dir)
    for (const mountPoint of await mountsUnder(traces.containerdRoot)) found.push(`mount ${mountPoint}`);
  const netns = await execa('ip', ['netns', 'list'], { reject: false });
  if (netns.stdout.includes(traces.netnsName)) found.push(`network namespace ${traces.netnsName}`);
  const veth = await execa('ip', ['link', 'show', traces.hostVeth], { reject: false });
  if (veth.exitCode === 0) found.push(`veth ${traces.hostVeth}`);
  if (existsSync(traces.dir)) found.push(`directory ${traces.dir}`);
  for (const entry of await sharedEntries()) if (!sharedBefore.has(entry)) found.push(`new entry ${entry}`);
  return found;
}

/** The entries of the shared places now; take it before start to compare with after stop. */
export async function sharedEntries(): Promise<Set<string>> {
  const entries = new Set<string>();
  for (const place of SHARED_PLACES) {
    for (const name of await readdir(place).catch(() => [] as string[])) entries.add(`${place}/${name}`);
  }
  return entries;
}

/** A process as the failure of a leftovers check shows it: pid, name, state (Z for a zombie), parent, command line. */
export async function describeProcess(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const [state = '?', parent = '?'] = statFields(stat);
  return `${pid} ${statName(stat)} (${state}, parent ${parent}) ${await commandLine(pid)}`.trim();
}

async function commandLine(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ').trim();
}
