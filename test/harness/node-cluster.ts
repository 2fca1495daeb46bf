/**
 * A one-node Kubernetes v1.20.2 cluster on this machine, as kind runs one inside its node container: etcd, the
 * control plane, containerd (its own config, root, state and socket), the kubelet and kube-proxy, all inside one
 * network namespace made for the node; pods get addresses from a CNI bridge inside it. The machine reaches the node
 * IP through a veth, so the admin kubeconfig works from outside the namespace (kubectl logs and exec too).
 *
 * startNodeCluster() and stop() are one call each. stop() removes everything start made, in order: the pods'
 * containers (through containerd, so their mounts and network namespaces go), containerd and its shims, every mount
 * under the cluster's directory, the processes, the namespace and veth, the kubelet's pod logs, the kernel settings
 * the kubelet changed, and the directory. It also runs on SIGINT and SIGTERM, and on a failed start.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import type { CertificateAndKey, CertificateAuthority } from '../../common/pki.js';
import { createCA, issueClientCert, issueServingCert } from '../../common/pki.js';
import {
  KUBE_APISERVER_VERSION,
  type NodeBinaryName,
  ensureKubeApiserver,
  findEtcd,
  findKubeApiserver,
  findKubectl,
  findNodeBinary,
} from './binaries.js';
import {
  APISERVER_PORT,
  NODE_NAME,
  type NodeAddresses,
  type NodePaths,
  type PkiFiles,
  cniConflist,
  containerdConfig,
  etcdFlags,
  kubeApiserverFlags,
  kubeControllerManagerFlags,
  kubeProxyFlags,
  kubeSchedulerFlags,
  kubeletFlags,
  nodePaths,
  pkiFiles,
  toArgs,
} from './node-config.js';
import { type ContainerdRoot, takeContainerdRoot } from './containerd-root.js';
import { type NodeNetwork, createNodeNetwork } from './node-network.js';
import { descendants, isRunning } from './proc.js';
import { hasCommand, inCI, isRoot } from './requirements.js';
import { onTerminationSignal } from './termination.js';
import { SupervisedProcess } from './supervised-process.js';

export interface NodeImage {
  /** The image's full name, e.g. `localhost/mesh-demo:dev`. */
  name: string;
  /** An OCI archive that `ctr images import` takes. */
  archive: string;
}

export interface NodeClusterOptions {
  /** The sandbox (pause) image; it must be among `images`. */
  pauseImage: string;
  /**
   * Imported into the node's containerd, one at a time in this order: the pause image before the kubelet starts,
   * the rest while the node starts. A promise lets the images be built (or found in the cache) meanwhile.
   */
  images: NodeImage[] | Promise<NodeImage[]>;
  /** How long the apiserver, and then the node, may take to become ready. */
  readyTimeoutMs?: number;
  /** Progress lines; stderr by default. */
  log?: (line: string) => void;
  /**
   * Runs once the apiserver is ready, while the node starts (e.g. `kubectl apply` of what the node will run), with
   * an admin kubectl; start resolves when it has, and fails if it fails.
   */
  whileNodeStarts?: (kubectl: NodeCluster['kubectl']) => Promise<void>;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface NodeCluster {
  /** https://NODE_IP:6443, reachable from the machine. */
  url: string;
  /** An admin kubeconfig (system:masters) that works from the machine, outside the node's namespace. */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  version: string;
  network: NodeNetwork;
  paths: NodePaths;
  pids: Record<string, number>;
  /** kubectl with the admin kubeconfig; never throws for a non-zero exit. */
  kubectl(args: string[], options?: { input?: string }): Promise<KubectlResult>;
  /** ctr against the node's containerd, in the `k8s.io` namespace the kubelet uses. */
  ctr(args: string[]): Promise<KubectlResult>;
  /** Stops everything and removes what start made; safe to call more than once. */
  stop(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 120_000;
const POLL_MS = 250;
const CONTEXT_NAME = 'mesh-node';
/** The kernel settings the kubelet sets at start (setupKernelTunables); restored on stop. */
const KUBELET_KERNEL_SETTINGS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];
const NODE_BINARIES: NodeBinaryName[] = [
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
];

/**
 * What the node needs, for `missingRequirements()`. In CI missing Kubernetes binaries are built right here (all
 * five come from one build), before any hook's timeout starts counting.
 */
export function nodeClusterRequirements(): Record<string, boolean> {
  const linux = process.platform === 'linux';
  if (linux && inCI()) ensureKubeApiserver({ build: true });
  return {
    Linux: linux,
    root: isRoot(),
    [`kube-apiserver and the node binaries ${KUBE_APISERVER_VERSION} (npm run build:kubernetes)`]:
      findKubeApiserver() !== undefined && NODE_BINARIES.every((name) => findNodeBinary(name) !== undefined),
    'etcd (apt-get install etcd-server)': findEtcd() !== undefined,
    kubectl: findKubectl() !== undefined,
    'containerd, ctr and runc (scripts/install-prerequisites.sh all)':
      hasCommand('containerd') && hasCommand('ctr') && hasCommand('runc'),
    'CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)':
      existsSync('/usr/lib/cni/bridge') && existsSync('/usr/lib/cni/host-local'),
    'conntrack, ip, nsenter': hasCommand('conntrack') && hasCommand('ip') && hasCommand('nsenter'),
  };
}

export async function startNodeCluster(options: NodeClusterOptions): Promise<NodeCluster> {
  const startedAt = Date.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`[node] ${line}\n`));
  const progress = (message: string) => log(`${message} (${secondsSince(startedAt)})`);
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const binaries = findBinaries();

  const dir = await mkdtemp(join(tmpdir(), 'mesh-node-'));
  const containerdRoot: ContainerdRoot = await takeContainerdRoot(join(dir, 'containerd', 'root'));
  const paths = nodePaths(dir, containerdRoot.path);
  const kernelSettings = await readKernelSettings();
  const started: SupervisedProcess[] = [];
  let network: NodeNetwork | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const byName = (name: string) => started.find((child) => child.name === name);
      await byName('kubelet')?.stop();
      await removePods(paths, network?.name);
      await byName('containerd')?.stop();
      await killShims(paths);
      await unmountUnder(paths.dir);
      // The CRI plugin mounts each sandbox's /dev/shm under the root.
      if (containerdRoot.cached) await unmountUnder(containerdRoot.path);
      await Promise.all([...started].reverse().map((child) => child.stop()));
      // The CRI plugin's files of the sandboxes and containers just deleted; the images stay.
      if (containerdRoot.cached) {
        for (const kind of ['sandboxes', 'containers'])
          await rm(join(containerdRoot.path, 'io.containerd.grpc.v1.cri', kind), {
            recursive: true,
            force: true,
          });
      }
      await network?.remove();
      await restoreKernelSettings(kernelSettings);
      await rm(paths.dir, { recursive: true, force: true });
      await containerdRoot.release();
    })());
  const stopOnSignal = onTerminationSignal(stop);

  const run = (name: string, binary: string, args: string[]) =>
    SupervisedProcess.start(name, binary, args, { netns: network?.path, detached: true }).then((child) => {
      started.push(child);
      return child;
    });

  try {
    network = await createNodeNetwork();
    const addresses = network.addresses;
    const url = `https://${addresses.nodeIp}:${APISERVER_PORT}`;
    progress(`network namespace ${network.name}, node ${addresses.nodeIp}, veth ${network.hostVeth}`);

    const pki = pkiFiles(paths.pki);
    const credentials = await writePki(paths, pki, addresses, url);
    await writeNodeConfig(paths, addresses, network.name, options.pauseImage);

    const images = Promise.resolve(options.images);
    // Handled here so that a failure surfaces where it is awaited, not as an unhandled rejection meanwhile.
    images.catch(() => {});
    const etcd = await run('etcd', binaries.etcd, toArgs(etcdFlags(paths)));
    const containerd = await run('containerd', 'containerd', ['--config', paths.containerdConfig]);
    const ctr = (args: string[]) =>
      runCommand('ctr', ['--address', paths.containerdSocket, '-n', 'k8s.io', ...args]);
    // The pause image first: the kubelet needs it for every pod. The rest are imported meanwhile, side by side,
    // and are all in before start returns.
    // An image a cached root already holds under the archive's manifest digest is not imported again.
    const importImage = async (image: NodeImage): Promise<'imported' | 'already there'> => {
      const [held, wanted] = await Promise.all([heldDigest(ctr, image.name), archiveDigest(image.archive)]);
      if (held !== undefined && held === wanted) return 'already there';
      const result = await ctr(['images', 'import', image.archive]);
      if (result.exitCode !== 0)
        throw new Error(`ctr images import ${image.archive}: ${result.stderr.trim()}`);
      return 'imported';
    };
    const containerdReady = waitFor(
      containerd,
      async () => (await ctr(['version'])).exitCode === 0,
      readyTimeoutMs,
    );
    // A cached root keeps images only: containers a killed cluster left in it go before the kubelet starts.
    const rootEmptied = containerdReady.then(() => removePods(paths, undefined));
    const pauseImported = Promise.all([rootEmptied, images]).then(async ([, list]) => {
      const pause = list.find((image) => image.name === options.pauseImage);
      if (!pause) throw new Error(`the pause image ${options.pauseImage} is not among the images to import`);
      await importImage(pause);
      progress('containerd ready, pause image imported');
    });
    const allImported = pauseImported
      .then(() => images)
      .then(async (list) => {
        // In the order given, one after the other: on two cores parallel imports only share the time, and the
        // first image (the webhook's, in the local mesh) is then there early instead of with the last.
        for (const image of list.filter((image) => image.name !== options.pauseImage)) {
          progress(`${await importImage(image)}: ${image.name}`);
        }
        progress(`${list.length} images in containerd`);
      });
    allImported.catch(() => {});

    const apiserver = await run(
      'kube-apiserver',
      binaries.kubeApiserver,
      toArgs(kubeApiserverFlags(addresses, pki)),
    );
    // The kubelet starts as soon as containerd has the pause image: its own start-up (cgroups, cAdvisor, the
    // runtime) overlaps the apiserver's, and it registers the node once the apiserver answers.
    await pauseImported;
    const kubelet = await run(
      'kubelet',
      binaries.kubelet,
      toArgs(kubeletFlags(paths, addresses, pki, options.pauseImage)),
    );
    await waitFor(
      apiserver,
      () => respondsOk(`${url}/readyz`, credentials.admin, credentials.ca),
      readyTimeoutMs,
      [etcd, containerd, kubelet],
    );
    const version = await fetchVersion(url, credentials.admin, credentials.ca);
    progress(`kube-apiserver ${version} ready at ${url}`);

    const kubeconfig = (name: string) => join(paths.kubeconfigs, name);
    await run(
      'kube-controller-manager',
      binaries['kube-controller-manager'],
      toArgs(kubeControllerManagerFlags(kubeconfig('kube-controller-manager'), pki)),
    );
    await run(
      'kube-scheduler',
      binaries['kube-scheduler'],
      toArgs(kubeSchedulerFlags(kubeconfig('kube-scheduler'))),
    );
    await run(
      'kube-proxy',
      binaries['kube-proxy'],
      toArgs(kubeProxyFlags(kubeconfig('kube-proxy'), addresses)),
    );

    const kubectl = (args: string[], { input }: { input?: string } = {}) =>
      runCommand(
        binaries.kubectl,
        ['--kubeconfig', paths.adminKubeconfig, `--cache-dir=${join(paths.dir, 'kubectl-cache')}`, ...args],
        input,
      );
    const alongside = options.whileNodeStarts?.(kubectl);
    alongside?.catch(() => {});
    await waitFor(
      kubelet,
      () => nodeIsReady(url, credentials.admin, credentials.ca),
      readyTimeoutMs,
      started,
    );
    progress(`node ${NODE_NAME} Ready`);
    await Promise.all([allImported, alongside]);

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(paths.adminKubeconfig);
    return {
      url,
      kubeconfigPath: paths.adminKubeconfig,
      kubeConfig,
      version,
      network,
      paths,
      pids: Object.fromEntries(started.map((child) => [child.name, child.pid])),
      kubectl,
      ctr,
      stop: async () => {
        const wasRunning = stopping === undefined;
        stopOnSignal.cancel();
        await stop();
        if (wasRunning) progress(`stopped; removed ${paths.dir} and ${network?.name}`);
      },
    };
  } catch (error) {
    const logs = started.map(
      (child) => `--- ${child.name} (${child.exitReason ?? 'running'}) ---\n${child.describeLogTail()}`,
    );
    stopOnSignal.cancel();
    await stop();
    if (error instanceof Error && !error.message.includes('Last ')) {
      error.message += `\n${logs.join('\n')}`;
    }
    throw error;
  }
}

type Binaries = Record<NodeBinaryName | 'kubeApiserver' | 'etcd' | 'kubectl', string>;

function findBinaries(): Binaries {
  const missing = (what: string) => {
    throw new Error(
      `${what} not found: run \`npm run build:kubernetes\` and scripts/install-prerequisites.sh all`,
    );
  };
  const node = Object.fromEntries(NODE_BINARIES.map((name) => [name, findNodeBinary(name) ?? missing(name)]));
  return {
    ...(node as Record<NodeBinaryName, string>),
    kubeApiserver: findKubeApiserver() ?? missing('kube-apiserver'),
    etcd: findEtcd() ?? missing('etcd'),
    kubectl: findKubectl() ?? missing('kubectl'),
  };
}

interface Credentials {
  ca: string;
  admin: CertificateAndKey;
}

/** The CAs, the apiserver's serving pair, the service-account keys, and one kubeconfig per component. */
async function writePki(
  paths: NodePaths,
  pki: PkiFiles,
  addresses: NodeAddresses,
  url: string,
): Promise<Credentials> {
  await mkdir(paths.pki, { recursive: true, mode: 0o700 });
  await mkdir(paths.kubeconfigs, { recursive: true, mode: 0o700 });
  const [servingCa, clientCa] = await Promise.all([
    createCA({ commonName: 'mesh-node serving CA' }),
    createCA({ commonName: 'mesh-node client CA' }),
  ]);
  const serving = await issueServingCert(servingCa, {
    dnsNames: [
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      'localhost',
    ],
    ipAddresses: [addresses.nodeIp, addresses.kubernetesServiceIp, '127.0.0.1'],
  });
  const client = (commonName: string, organizations: string[] = []) =>
    issueClientCert(clientCa, { commonName, organizations });
  const [admin, kubeletClient, node, controllerManager, scheduler, proxy] = await Promise.all([
    client('admin', ['system:masters']),
    client('kube-apiserver-kubelet-client'),
    client(`system:node:${NODE_NAME}`, ['system:nodes']),
    client('system:kube-controller-manager'),
    client('system:kube-scheduler'),
    client('system:kube-proxy'),
  ]);
  const serviceAccount = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const secret = { mode: 0o600 };
  const kubeconfig = (name: string, user: CertificateAndKey) =>
    writeFile(join(paths.kubeconfigs, name), kubeconfigYaml(url, servingCa, user), secret);
  await Promise.all([
    writeFile(pki.servingCa, servingCa.cert),
    writeFile(pki.servingCert, serving.cert),
    writeFile(pki.servingKey, serving.key, secret),
    writeFile(pki.clientCa, clientCa.cert),
    writeFile(pki.clientCaKey, clientCa.key, secret),
    writeFile(pki.serviceAccountPublicKey, serviceAccount.publicKey),
    writeFile(pki.serviceAccountPrivateKey, serviceAccount.privateKey, secret),
    writeFile(pki.kubeletClientCert, kubeletClient.cert),
    writeFile(pki.kubeletClientKey, kubeletClient.key, secret),
    writeFile(paths.adminKubeconfig, kubeconfigYaml(url, servingCa, admin), secret),
    kubeconfig('kubelet', node),
    kubeconfig('kube-controller-manager', controllerManager),
    kubeconfig('kube-scheduler', scheduler),
    kubeconfig('kube-proxy', proxy),
  ]);
  return { ca: servingCa.cert, admin };
}

async function writeNodeConfig(
  paths: NodePaths,
  addresses: NodeAddresses,
  networkName: string,
  pauseImage: string,
) {
  await mkdir(paths.cniConfDir, { recursive: true });
  await mkdir(join(paths.containerdConfig, '..'), { recursive: true });
  await writeFile(paths.containerdConfig, containerdConfig(paths, pauseImage));
  await writeFile(
    join(paths.cniConfDir, '10-mesh-node.conflist'),
    cniConflist(networkName, addresses, paths),
  );
}

function kubeconfigYaml(url: string, ca: CertificateAuthority, user: CertificateAndKey): string {
  const base64 = (pem: string): string => Buffer.from(pem).toString('base64');
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: CONTEXT_NAME, cluster: { server: url, 'certificate-authority-data': base64(ca.cert) } },
    ],
    users: [
      {
        name: 'user',
        user: { 'client-certificate-data': base64(user.cert), 'client-key-data': base64(user.key) },
      },
    ],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user: 'user' } }],
    'current-context': CONTEXT_NAME,
  });
}

/** The manifest digest containerd holds for an image name, if any (`ctr images ls`: REF TYPE DIGEST …). */
async function heldDigest(ctr: NodeCluster['ctr'], name: string): Promise<string | undefined> {
  const listed = await ctr(['images', 'ls']);
  if (listed.exitCode !== 0) return undefined;
  const row = listed.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((columns) => columns[0] === name);
  return row?.[2];
}

/** The digest of the one manifest in an OCI archive's index.json, which names the image. */
export async function archiveDigest(archive: string): Promise<string | undefined> {
  const index = await execa('tar', ['-xOf', archive, 'index.json'], { reject: false });
  if (index.exitCode !== 0) return undefined;
  const parsed = JSON.parse(index.stdout) as { manifests?: { digest?: string }[] };
  return parsed.manifests?.length === 1 ? parsed.manifests[0]?.digest : undefined;
}

/** Asked over HTTPS in this process: a kubectl per poll would cost a process start every 250 ms. */
async function nodeIsReady(url: string, user: CertificateAndKey, ca: string): Promise<boolean> {
  const { status, body } = await httpsGet(`${url}/api/v1/nodes/${NODE_NAME}`, user, ca).catch(() => ({
    status: 0,
    body: '',
  }));
  if (status !== 200) return false;
  const node = JSON.parse(body) as { status?: { conditions?: { type: string; status: string }[] } };
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * Kills and deletes every container through containerd, so the shims unmount their root filesystems and exit, then
 * removes the pods' network namespaces (containerd's bind mounts under /var/run/netns), the kubelet's pod logs and
 * the CNI plugins' cached results for this network.
 */
async function removePods(paths: NodePaths, networkName: string | undefined): Promise<void> {
  if (!existsSync(paths.containerdSocket)) return;
  const ctr = (args: string[]) =>
    runCommand('ctr', ['--address', paths.containerdSocket, '-n', 'k8s.io', ...args]);
  const listed = await ctr(['containers', 'list', '--quiet']);
  if (listed.exitCode !== 0) return;
  const ids = listed.stdout.split('\n').filter((id) => id !== '');
  const netnsPaths = new Set<string>();
  const podLogDirs = new Set<string>();
  for (const id of ids) {
    const info = await ctr(['containers', 'info', id]);
    if (info.exitCode !== 0) continue;
    const container = JSON.parse(info.stdout) as {
      Labels?: Record<string, string>;
      Spec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
    };
    for (const namespace of container.Spec?.linux?.namespaces ?? []) {
      if (namespace.type === 'network' && namespace.path?.startsWith('/var/run/netns/'))
        netnsPaths.add(namespace.path);
    }
    const labels = container.Labels ?? {};
    const [ns, name, uid] = [
      labels['io.kubernetes.pod.namespace'],
      labels['io.kubernetes.pod.name'],
      labels['io.kubernetes.pod.uid'],
    ];
    if (ns && name && uid) podLogDirs.add(join('/var/log/pods', `${ns}_${name}_${uid}`));
  }
  await Promise.all(ids.map((id) => ctr(['tasks', 'kill', '--all', '--signal', 'SIGKILL', id])));
  for (const id of ids) {
    await ctr(['tasks', 'delete', '--force', id]);
    await ctr(['containers', 'delete', id]);
  }
  for (const path of netnsPaths) {
    await execa('umount', [path], { reject: false });
    await rm(path, { force: true });
  }
  await removePodLogs(podLogDirs, ids);
  // The CNI plugins' cached results: `NETWORK-SANDBOX-eth0` for the pod network, `cni-loopback-SANDBOX-lo` for lo.
  await removeMatching(
    '/var/lib/cni/results',
    (name) =>
      (networkName !== undefined && name.startsWith(`${networkName}-`)) ||
      ids.some((id) => name.includes(id)),
  );
}

async function removePodLogs(podLogDirs: Set<string>, containerIds: string[]): Promise<void> {
  for (const dir of podLogDirs) await rm(dir, { recursive: true, force: true });
  await removeMatching('/var/log/containers', (name) =>
    containerIds.some((id) => name.endsWith(`-${id}.log`)),
  );
}

async function removeMatching(dir: string, matches: (name: string) => boolean): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names.filter(matches).map((name) => rm(join(dir, name), { recursive: true, force: true })),
  );
}

/**
 * Shims outlive containerd (they are re-parented); any left is found by the socket address on its command line, and
 * goes with whatever of its pods' processes the kubelet left.
 */
async function killShims(paths: NodePaths): Promise<void> {
  const shims = await pidsWithArgument(paths.containerdSocket);
  const pids = [...shims, ...(await descendants(shims))];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + KILLED_EXIT_TIMEOUT_MS;
  while (pids.some(isRunning) && Date.now() < deadline) await sleep(20);
}

const KILLED_EXIT_TIMEOUT_MS = 10_000;

/** The processes whose command line holds `argument`, e.g. a path inside a cluster's directory. */
export async function pidsWithArgument(argument: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((word) => word.includes(argument))) pids.push(Number(entry));
  }
  return pids;
}

/** The mount points at or under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter(
      (mountPoint): mountPoint is string =>
        mountPoint !== undefined && (mountPoint === dir || mountPoint.startsWith(`${dir}/`)),
    )
    .reverse();
}

/** containerd and the kubelet mount under their roots (snapshots, shm, secrets and service-account tokens). */
async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const mountPoint of mounts) {
      const result = await execa('umount', [mountPoint], { reject: false });
      if (result.exitCode !== 0) await execa('umount', ['--lazy', mountPoint], { reject: false });
    }
  }
}

async function readKernelSettings(): Promise<Map<string, string>> {
  const settings = new Map<string, string>();
  for (const name of KUBELET_KERNEL_SETTINGS) {
    const value = await readFile(`/proc/sys/${name}`, 'utf8').catch(() => undefined);
    if (value !== undefined) settings.set(name, value.trim());
  }
  return settings;
}

async function restoreKernelSettings(settings: Map<string, string>): Promise<void> {
  for (const [name, value] of settings) {
    const now = await readFile(`/proc/sys/${name}`, 'utf8').catch(() => value);
    if (now.trim() !== value) await writeFile(`/proc/sys/${name}`, value).catch(() => undefined);
  }
}

async function runCommand(command: string, args: string[], input = ''): Promise<KubectlResult> {
  const result = await execa(command, args, { input, reject: false });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

async function waitFor(
  child: SupervisedProcess,
  isReady: () => Promise<boolean>,
  timeoutMs: number,
  others: SupervisedProcess[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const process of [child, ...others]) {
      if (process.exitReason !== undefined) {
        throw new Error(`${process.name} ended (${process.exitReason}). ${process.describeLogTail()}`);
      }
    }
    if (await isReady()) return;
    if (Date.now() > deadline) {
      throw new Error(`${child.name} was not ready after ${timeoutMs / 1000} s. ${child.describeLogTail()}`);
    }
    await sleep(POLL_MS);
  }
}

function respondsOk(url: string, user: CertificateAndKey, ca: string): Promise<boolean> {
  return httpsGet(url, user, ca).then(
    ({ status }) => status === 200,
    () => false,
  );
}

async function fetchVersion(url: string, user: CertificateAndKey, ca: string): Promise<string> {
  const { status, body } = await httpsGet(`${url}/version`, user, ca);
  const gitVersion: unknown =
    status === 200 ? (JSON.parse(body) as { gitVersion?: unknown }).gitVersion : undefined;
  if (typeof gitVersion !== 'string') throw new Error(`GET ${url}/version answered ${status}: ${body}`);
  return gitVersion;
}

function httpsGet(
  url: string,
  user: CertificateAndKey,
  ca: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      { ca, cert: user.cert, key: user.key, agent: false, timeout: 2_000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}
