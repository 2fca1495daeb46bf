/**
 * A real Kubernetes control plane for tests and `npm start`: etcd and kube-apiserver on free loopback ports with
 * throwaway certificates, everything in one temporary directory that stop() removes. Modelled on controller-runtime's
 * envtest: there is no kubelet, scheduler or controller-manager, so objects are stored and admitted but pods never run
 * and no controller fills in defaults such as service accounts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import type { CertificateAndKey } from '../../common/pki.js';
import { createCA, issueClientCert, issueServingCert } from '../../common/pki.js';
import {
  KUBE_APISERVER_VERSION,
  ensureKubeApiserver,
  findEtcd,
  findKubeApiserver,
  findKubectl,
} from './binaries.js';
import { inCI } from './requirements.js';
import { SupervisedProcess } from './supervised-process.js';

export interface ControlPlaneOptions {
  /** Build kube-apiserver if it is missing (about 8 minutes). Defaults to true in CI and false elsewhere. */
  buildKubeApiserver?: boolean;
  /** kube-apiserver flags by name without dashes, e.g. `{ v: '4' }`; they add to or replace the defaults. */
  kubeApiserverFlags?: Record<string, string>;
  /** How long etcd, and then kube-apiserver, may take to become ready. */
  readyTimeoutMs?: number;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ControlPlane {
  /** kube-apiserver's https URL. */
  url: string;
  /** A kubeconfig for user `admin` in group `system:masters`. */
  kubeconfigPath: string;
  /** The same credentials, loaded for @kubernetes/client-node. */
  kubeConfig: KubeConfig;
  /** The CA that signed kube-apiserver's serving certificate, as PEM. */
  caPem: string;
  /** kube-apiserver's gitVersion, e.g. `v1.20.2`. */
  version: string;
  /** The temporary directory holding etcd's data, the certificates and the kubeconfig. */
  dir: string;
  pids: { etcd: number; kubeApiserver: number };
  /** Runs kubectl against this control plane; `input` is its stdin. Never throws for a non-zero exit. */
  kubectl(args: string[], options?: { input?: string }): Promise<KubectlResult>;
  /** Stops kube-apiserver, then etcd, and removes `dir`. Safe to call more than once. */
  stop(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 60_000;
const READY_POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;
const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
const CONTEXT_NAME = 'mesh-injector-test';

/**
 * What the control plane needs, for `missingRequirements()`. In CI a missing kube-apiserver is built right here,
 * before any hook's timeout starts counting; elsewhere it only counts as missing, because a build takes minutes.
 */
export function controlPlaneRequirements(): Record<string, boolean> {
  const kubeApiserver = inCI() ? ensureKubeApiserver({ build: true }) : findKubeApiserver();
  return {
    [`kube-apiserver ${KUBE_APISERVER_VERSION} (npm run build:kubernetes)`]: kubeApiserver !== undefined,
    'etcd (apt-get install etcd-server)': findEtcd() !== undefined,
    kubectl: findKubectl() !== undefined,
  };
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const startedAt = Date.now();
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const kubeApiserverPath = ensureKubeApiserver({ build: options.buildKubeApiserver ?? inCI() });
  const etcdPath = required(findEtcd(), 'etcd not found: install etcd-server or set TEST_ASSET_ETCD');
  const kubectlPath = required(findKubectl(), 'kubectl not found: put it on PATH or set TEST_ASSET_KUBECTL');

  const dir = await mkdtemp(join(tmpdir(), 'mesh-injector-control-plane-'));
  const started: SupervisedProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const child of [...started].reverse()) await child.stop();
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    const [etcdClientPort, etcdPeerPort, apiserverPort] = await freeLoopbackPorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const url = `https://127.0.0.1:${apiserverPort}`;
    const certificates = provisionCertificates(join(dir, 'pki'));

    const etcd = await SupervisedProcess.start(
      'etcd',
      etcdPath,
      etcdArgs(join(dir, 'etcd'), etcdUrl, `http://127.0.0.1:${etcdPeerPort}`),
    );
    started.push(etcd);
    await waitUntilReady(etcd, () => respondsOk(`${etcdUrl}/health`), readyTimeoutMs);
    progress(`etcd ready at ${etcdUrl} (${secondsSince(startedAt)})`);

    const { files, caPem, admin } = await certificates;
    const flags = { ...kubeApiserverFlags(url, etcdUrl, files), ...options.kubeApiserverFlags };
    const kubeApiserver = await SupervisedProcess.start(
      'kube-apiserver',
      kubeApiserverPath,
      Object.entries(flags).map(([name, value]) => `--${name}=${value}`),
    );
    started.push(kubeApiserver);
    const credentials = { ca: caPem, ...admin };
    await waitUntilReady(kubeApiserver, () => respondsOk(`${url}/readyz`, credentials), readyTimeoutMs);
    const version = await fetchVersion(url, credentials);

    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(url, caPem, admin), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    progress(
      `kube-apiserver ${version} ready at ${url} (${secondsSince(startedAt)}); KUBECONFIG=${kubeconfigPath}`,
    );

    return {
      url,
      kubeconfigPath,
      kubeConfig,
      caPem,
      version,
      dir,
      pids: { etcd: etcd.pid, kubeApiserver: kubeApiserver.pid },
      // --cache-dir keeps kubectl's discovery cache, one per port, out of ~/.kube.
      kubectl: (args, { input } = {}) =>
        runKubectl(
          kubectlPath,
          ['--kubeconfig', kubeconfigPath, `--cache-dir=${join(dir, 'kubectl-cache')}`, ...args],
          input,
        ),
      stop: async () => {
        const wasRunning = stopping === undefined;
        await stop();
        if (wasRunning) progress(`stopped; removed ${dir}`);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function etcdArgs(dataDir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    '--name=default',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    '--logger=zap',
  ];
}

/** The flags envtest uses for 1.20, with our own certificates instead of a generated --cert-dir. */
function kubeApiserverFlags(url: string, etcdUrl: string, files: CertificateFiles): Record<string, string> {
  const port = new URL(url).port;
  return {
    'advertise-address': '127.0.0.1',
    'bind-address': '127.0.0.1',
    'secure-port': port,
    'etcd-servers': etcdUrl,
    // Ignored while the tls files are given, but keeps kube-apiserver away from its default /var/run/kubernetes.
    'cert-dir': files.dir,
    'tls-cert-file': files.servingCert,
    'tls-private-key-file': files.servingKey,
    'client-ca-file': files.clientCa,
    'service-account-issuer': `${url}/`,
    'service-account-key-file': files.serviceAccountPublicKey,
    'service-account-signing-key-file': files.serviceAccountPrivateKey,
    'service-cluster-ip-range': SERVICE_CLUSTER_IP_RANGE,
    'authorization-mode': 'RBAC',
    // The ServiceAccount admission plugin rejects pods until a controller creates the `default` account; none runs.
    'disable-admission-plugins': 'ServiceAccount',
    'allow-privileged': 'true',
  };
}

interface CertificateFiles {
  dir: string;
  servingCert: string;
  servingKey: string;
  clientCa: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
}

/** Writes kube-apiserver's certificates and keys under `dir`; the admin's credentials go only into the kubeconfig. */
async function provisionCertificates(
  dir: string,
): Promise<{ files: CertificateFiles; caPem: string; admin: CertificateAndKey }> {
  const [servingCa, clientCa] = await Promise.all([
    createCA({ commonName: 'mesh-injector test serving CA' }),
    createCA({ commonName: 'mesh-injector test client CA' }),
  ]);
  const serving = await issueServingCert(servingCa, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const admin = await issueClientCert(clientCa, { commonName: 'admin', organizations: ['system:masters'] });
  const serviceAccount = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

  const files: CertificateFiles = {
    dir,
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    clientCa: join(dir, 'client-ca.crt'),
    serviceAccountPublicKey: join(dir, 'sa.pub'),
    serviceAccountPrivateKey: join(dir, 'sa.key'),
  };
  await mkdir(dir, { mode: 0o700 });
  await Promise.all([
    writeFile(files.servingCert, serving.cert),
    writeFile(files.servingKey, serving.key, { mode: 0o600 }),
    writeFile(files.clientCa, clientCa.cert),
    writeFile(files.serviceAccountPublicKey, serviceAccount.publicKey),
    writeFile(files.serviceAccountPrivateKey, serviceAccount.privateKey, { mode: 0o600 }),
  ]);
  return { files, caPem: servingCa.cert, admin };
}

function kubeconfigYaml(url: string, caPem: string, admin: CertificateAndKey): string {
  const base64 = (pem: string): string => Buffer.from(pem).toString('base64');
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT_NAME, cluster: { server: url, 'certificate-authority-data': base64(caPem) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': base64(admin.cert), 'client-key-data': base64(admin.key) },
      },
    ],
    contexts: [{ name: CONTEXT_NAME, context: { cluster: CONTEXT_NAME, user: 'admin' } }],
    'current-context': CONTEXT_NAME,
  });
}

async function runKubectl(kubectlPath: string, args: string[], input = ''): Promise<KubectlResult> {
  // An empty input closes stdin, so a `-f -` without input fails instead of waiting forever.
  const result = await execa(kubectlPath, args, { input, reject: false });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

interface TlsCredentials {
  ca: string;
  cert: string;
  key: string;
}

async function fetchVersion(url: string, credentials: TlsCredentials): Promise<string> {
  const { status, body } = await httpGet(`${url}/version`, credentials);
  const gitVersion: unknown =
    status === 200 ? (JSON.parse(body) as { gitVersion?: unknown }).gitVersion : undefined;
  if (typeof gitVersion !== 'string') throw new Error(`GET ${url}/version answered ${status}: ${body}`);
  return gitVersion;
}

function respondsOk(url: string, credentials?: TlsCredentials): Promise<boolean> {
  return httpGet(url, credentials).then(
    ({ status }) => status === 200,
    () => false,
  );
}

function httpGet(url: string, credentials?: TlsCredentials): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (response: http.IncomingMessage): void => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    };
    // agent: false gives each probe its own connection, so no keep-alive socket outlives the servers.
    const request = credentials
      ? https.get(url, { ...credentials, agent: false, timeout: PROBE_TIMEOUT_MS }, onResponse)
      : http.get(url, { agent: false, timeout: PROBE_TIMEOUT_MS }, onResponse);
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

async function waitUntilReady(
  child: SupervisedProcess,
  isReady: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitReason !== undefined) {
      throw new Error(
        `${child.name} ended (${child.exitReason}) before it was ready. ${child.describeLogTail()}`,
      );
    }
    if (await isReady()) return;
    if (Date.now() > deadline) {
      throw new Error(`${child.name} was not ready after ${timeoutMs / 1000} s. ${child.describeLogTail()}`);
    }
    await sleep(READY_POLL_INTERVAL_MS);
  }
}

/** Holds several listeners open at once so that the ports handed out are distinct. */
async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}

function progress(message: string): void {
  process.stderr.write(`[control-plane] ${message}\n`);
}
