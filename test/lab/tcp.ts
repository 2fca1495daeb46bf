import type { Identity, Pod } from './lab.js';
import { builtFile } from './paths.js';
import type { LabProcess } from './process.js';
import type { ServerView } from './tcp-report.js';

/** Starts a lab app server on the given ports, on all the pod's addresses, and waits until it listens. */
export async function startTcpServer(pod: Pod, ports: readonly number[]): Promise<LabProcess> {
  const server = pod.spawn('node', [builtFile('test/lab/programs/tcp-server.js'), ...ports.map(String)]);
  await server.waitForLine(/^listening/);
  return server;
}

const clients = new WeakMap<Pod, Map<string, LabProcess>>();
let lastRequest = 0;

/** Connects from a pod, as root unless told otherwise, to a lab server and returns what the server saw. */
export async function connect(
  from: Pod,
  address: string,
  port: number,
  identity: Identity = {},
): Promise<ServerView> {
  const client = clientOf(from, identity);
  const id = String(++lastRequest);
  const reply = client.waitForLine(new RegExp(`^${id} `));
  client.writeLine(`${id} ${address} ${port}`);
  const [, status, ...rest] = (await reply).split(' ');
  const detail = rest.join(' ');
  if (status !== 'ok') throw new Error(`from pod ${from.name}: ${detail}`);
  return JSON.parse(detail) as ServerView;
}

function clientOf(pod: Pod, identity: Identity): LabProcess {
  const podClients = clients.get(pod) ?? new Map<string, LabProcess>();
  clients.set(pod, podClients);
  const key = `${identity.uid ?? 0}:${identity.gid ?? 0}`;
  let client = podClients.get(key);
  if (!client?.running) {
    client = pod.spawn('node', [builtFile('test/lab/programs/tcp-client.js')], identity);
    podClients.set(key, client);
  }
  return client;
}
