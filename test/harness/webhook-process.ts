/**
 * Runs the built webhook (`node dist/cli/main.js serve`) as a real HTTPS process on a free loopback port, with a
 * throwaway CA and serving certificate, and always stops it. Used by control-plane tests and by `npm start`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { createCA, issueServingCert, type CertificateAuthority } from '../../common/pki.js';
import { LOG_FLUSH_INTERVAL_MS } from '../../webhook/logging.js';
import { terminate } from './child-process.js';
import { repoPath } from './repo.js';

export const CLI_PATH = repoPath('dist', 'cli', 'main.js');
export const SHIPPED_CONFIG_DIR = repoPath('manifests', 'config');

export interface WebhookProcessOptions {
  configDir?: string;
  kubeconfigPath?: string;
  shutdownDelayMs?: number;
  /** Node's own flags for the process, e.g. a heap limit like the one a container's memory limit implies. */
  nodeFlags?: string[];
  /** Extra environment for the process, e.g. a Deployment's env. */
  env?: Record<string, string>;
  /** Where the process's JSON log lines go; by default they are kept for `logs()` only. */
  onLogLine?: (line: string) => void;
}

export interface WebhookProcess {
  /** e.g. https://127.0.0.1:40123 */
  url: string;
  port: number;
  /** The plain-HTTP monitoring port's URL (/metrics), e.g. http://127.0.0.1:40124 */
  monitoringUrl: string;
  pid: number;
  ca: CertificateAuthority;
  certPath: string;
  keyPath: string;
  logs(): string[];
  /**
   * The first log line that matches, waited for: the webhook writes its lines in batches, each at most
   * LOG_FLUSH_INTERVAL_MS after it was logged (webhook/logging.ts). Undefined if none comes within the timeout.
   */
  logLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string | undefined>;
  /** Every line logged until now, read once a batch interval has passed, so that a missing line is missing. */
  settledLogs(): Promise<string[]>;
  /** Resolves when the process exits, with its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after a grace period; removes the temp dir. Safe to call more than once. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startWebhookProcess(options: WebhookProcessOptions = {}): Promise<WebhookProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-injector-webhook-'));
  const ca = await createCA({ commonName: 'mesh-injector-test-ca', validityDays: 1 });
  const serving = await issueServingCert(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: 1,
  });
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  await writeFile(certPath, serving.cert);
  await writeFile(keyPath, serving.key, { mode: 0o600 });
  const port = await freePort();
  const monitoringPort = await freePort();

  const lines: string[] = [];
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeFlags ?? []),
      CLI_PATH,
      'serve',
      '--host=127.0.0.1',
      `--port=${port}`,
      `--monitoring-port=${monitoringPort}`,
      `--tls-cert=${certPath}`,
      `--tls-key=${keyPath}`,
      `--config=${options.configDir ?? SHIPPED_CONFIG_DIR}`,
      `--shutdown-delay=${options.shutdownDelayMs ?? 0}`,
      ...(options.kubeconfigPath ? [`--kubeconfig=${options.kubeconfigPath}`] : []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env, KUBECONFIG: options.kubeconfigPath ?? '/nonexistent' },
    },
  );
  // The webhook writes its log asynchronously, several lines per write, so a chunk may end inside a line: each
  // stream keeps its unfinished line until the rest arrives.
  const collector = () => {
    let partial = '';
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts.filter(Boolean)) {
        lines.push(line);
        options.onLogLine?.(line);
      }
    };
  };
  child.stdout?.on('data', collector());
  child.stderr?.on('data', collector());
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off('exit', killOnExit);
      await terminate(child, 10_000);
      await rm(dir, { recursive: true, force: true });
    })());

  const url = `https://127.0.0.1:${port}`;
  try {
    await waitForReady(url, ca.cert, child, lines);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    port,
    monitoringUrl: `http://127.0.0.1:${monitoringPort}`,
    pid: child.pid ?? -1,
    ca,
    certPath,
    keyPath,
    logs: () => [...lines],
    logLine: async (match, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(match);
        if (found !== undefined || Date.now() > deadline) return found;
        await sleep(20);
      }
    },
    settledLogs: async () => {
      await sleep(2 * LOG_FLUSH_INTERVAL_MS + 100);
      return [...lines];
    },
    exited,
    kill: (signal) => child.kill(signal),
    stop,
  };
}

async function waitForReady(url: string, caPem: string, child: ChildProcess, lines: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(
        `webhook exited with ${child.exitCode} before it was ready:\n${lines.slice(-20).join('\n')}`,
      );
    }
    if ((await getStatus(`${url}/readyz`, caPem)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`webhook not ready after 20 s:\n${lines.slice(-20).join('\n')}`);
}

export function getStatus(url: string, caPem: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ca: caPem, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** POSTs JSON over HTTPS, trusting `caPem`; resolves with the status and body whatever the status. */
export function postJson(
  url: string,
  caPem: string,
  payload: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca: caPem, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end(JSON.stringify(payload));
  });
}
