import { ask } from './client.js';
import type { HttpView } from './http-report.js';
import type { Pod } from './lab.js';
import { labProgram } from './paths.js';
import type { LabProcess } from './process.js';

/** Starts the lab's HTTP app, named `app`, on the given ports of all the pod's addresses; waits until it listens. */
export async function startHttpServer(pod: Pod, app: string, ports: readonly number[]): Promise<LabProcess> {
  const server = pod.spawn('node', [labProgram('programs/http-server.js'), app, ...ports.map(String)]);
  await server.waitForLine(/^listening/);
  return server;
}

/** Sends GET / from a pod's app (as root) to an address and port, and returns what the answering app saw. */
export async function httpGet(from: Pod, address: string, port: number): Promise<HttpView> {
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/`;
  return JSON.parse(await ask(from, labProgram('programs/http-client.js'), url)) as HttpView;
}
