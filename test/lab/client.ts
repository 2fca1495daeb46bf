import type { Identity, Pod } from './lab.js';
import type { LabProcess } from './process.js';

/**
 * The lab's clients are long-lived processes, one per pod, program and user, that read one request per stdin line
 * `ID ARGS...` and answer `ID ok DETAIL` or `ID error MESSAGE`; that keeps Node's start-up time out of every call.
 */
const clients = new WeakMap<Pod, Map<string, LabProcess>>();
let lastRequest = 0;

/** Sends a request to the pod's client running `program` as `identity` and resolves with the answer's DETAIL. */
export async function ask(
  pod: Pod,
  program: string,
  request: string,
  identity: Identity = {},
): Promise<string> {
  const client = clientOf(pod, program, identity);
  const id = String(++lastRequest);
  const reply = client.waitForLine(new RegExp(`^${id} `));
  client.writeLine(`${id} ${request}`);
  const [, status, ...rest] = (await reply).split(' ');
  const detail = rest.join(' ');
  if (status !== 'ok') throw new Error(`from pod ${pod.name}: ${detail}`);
  return detail;
}

function clientOf(pod: Pod, program: string, identity: Identity): LabProcess {
  const podClients = clients.get(pod) ?? new Map<string, LabProcess>();
  clients.set(pod, podClients);
  const key = `${program} ${identity.uid ?? 0}:${identity.gid ?? 0}`;
  let client = podClients.get(key);
  if (!client?.running) {
    client = pod.spawn('node', [program], identity);
    podClients.set(key, client);
  }
  return client;
}
