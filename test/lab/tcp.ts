import { ask } from './client.js';
import type { Identity, Pod } from './lab.js';
import { labProgram } from './paths.js';
import type { LabProcess } from './process.js';
import type { ServerView } from './tcp-report.js';

/** Starts a lab app server on the given ports, on all the pod's addresses, and waits until it listens. */
export async function startTcpServer(pod: Pod, ports: readonly number[]): Promise<LabProcess> {
  const server = pod.spawn('node', [labProgram('programs/tcp-server.js'), ...ports.map(String)]);
  await server.waitForLine(/^listening/);
  return server;
}

/** Connects from a pod, as root unless told otherwise, to a lab server and returns what the server saw. */
export async function connect(
  from: Pod,
  address: string,
  port: number,
  identity: Identity = {},
): Promise<ServerView> {
  const client = labProgram('programs/tcp-client.js');
  return JSON.parse(await ask(from, client, `${address} ${port}`, identity)) as ServerView;
}
