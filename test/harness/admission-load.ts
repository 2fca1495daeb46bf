/**
 * A load client for webhook processes that records every request's outcome, for tests that change something
 * (certificates, a shutdown) in the middle of a run. It behaves like the apiserver's HTTP/1.1 client behind a
 * Service: keep-alive connections per backend, reused while the server keeps them open, round-robin across the
 * backends for new connections. A backend marked not ready (its endpoint removed) gets no NEW connections, but an
 * idle pooled connection to it is still reused, as the apiserver does (kubernetes#127335). A refused new
 * connection (ECONNREFUSED) is retried on the next backend, as a dial error is; any other error (a reset, a
 * hang-up on a reused connection, a timeout) is a failure, because the apiserver does not retry a POST that may
 * have reached the webhook.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';

export interface Backend {
  /** e.g. https://127.0.0.1:40123 */
  url: string;
  caPem: string;
  /** Whether the backend is an endpoint of the Service; ready when not given. */
  ready?: () => boolean;
}

export interface LoadOptions {
  backends: Backend[];
  /** How many requests to send, at most. */
  total: number;
  /** Ends the run early, before the next request is sent, once it returns true. */
  stopWhen?: () => boolean;
  concurrency: number;
  /** The request body: an AdmissionReview. */
  body: string;
  /** Why an answer is wrong, or undefined when it is right. */
  check: (status: number, body: string) => string | undefined;
  /** Called after each completed request with the count so far; mid-run actions hang off this. */
  onCompleted?: (completed: number) => void;
  /** Called with the backend's url for each right answer. */
  onAnswered?: (url: string) => void;
  /** Retry a refused new connection on the next backend (as a Service's endpoints would route). */
  retryRefused?: boolean;
  /** Send every nth request on a new connection of its own, so TLS handshakes happen throughout the run. */
  newConnectionEvery?: number;
}

export interface LoadResult {
  completed: number;
  failures: string[];
  /** Requests that found a backend refusing connections and were answered by another one. */
  retriedRefused: number;
  /** Answers by backend url. */
  answeredBy: Record<string, number>;
}

/** LoadOptions.check for a pod that must be injected: HTTP 200 with a JSONPatch. */
export function expectInjected(status: number, body: string): string | undefined {
  const injected =
    status === 200 &&
    (JSON.parse(body) as { response: { patchType?: string } }).response.patchType === 'JSONPatch';
  return injected ? undefined : `answered ${status}: ${body.slice(0, 200)}`;
}

export async function runAdmissionLoad(options: LoadOptions): Promise<LoadResult> {
  const agents = options.backends.map(
    () => new Agent({ keepAlive: true, maxSockets: options.concurrency, timeout: 30_000 }),
  );
  const result: LoadResult = { completed: 0, failures: [], retriedRefused: 0, answeredBy: {} };
  let next = 0;

  /** The backend a request goes to: round-robin, skipping one that is not ready unless a pooled connection waits. */
  function route(index: number): number {
    const count = options.backends.length;
    for (let offset = 0; offset < count; offset++) {
      const candidate = (index + offset) % count;
      if (options.backends[candidate]!.ready?.() !== false || hasIdleSocket(agents[candidate]!))
        return candidate;
    }
    return index % count;
  }

  async function one(index: number): Promise<void> {
    let backend = route(index);
    for (let attempt = 0; ; attempt++) {
      const target = options.backends[backend]!;
      const fresh = options.newConnectionEvery !== undefined && index % options.newConnectionEvery === 0;
      try {
        const answer = await post(target, fresh ? false : agents[backend]!, options.body);
        const problem = options.check(answer.status, answer.body);
        if (problem) result.failures.push(`${target.url}: ${problem}`);
        else {
          result.answeredBy[target.url] = (result.answeredBy[target.url] ?? 0) + 1;
          options.onAnswered?.(target.url);
        }
        if (attempt > 0) result.retriedRefused++;
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (options.retryRefused && code === 'ECONNREFUSED' && attempt < options.backends.length) {
          backend = (backend + 1) % options.backends.length;
          continue;
        }
        result.failures.push(`${target.url}: ${code ?? ''} ${(error as Error).message}`);
        return;
      }
    }
  }

  async function worker(): Promise<void> {
    while (next < options.total && !options.stopWhen?.()) {
      const index = next++;
      await one(index);
      result.completed++;
      options.onCompleted?.(result.completed);
    }
  }

  await Promise.all(Array.from({ length: options.concurrency }, worker));
  for (const agent of agents) agent.destroy();
  return result;
}

function hasIdleSocket(agent: Agent): boolean {
  return Object.values(agent.freeSockets).some((sockets) => (sockets?.length ?? 0) > 0);
}

function post(
  backend: Backend,
  agent: Agent | false,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${backend.url}/inject`,
      {
        method: 'POST',
        agent,
        ca: backend.caPem,
        servername: 'localhost',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.once('error', reject);
    req.end(body);
  });
}

/** The resident set size of a process, in bytes, from /proc/<pid>/status. */
export async function residentSetBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib) * 1024;
}
