/** The pods the suite runs, and how it reads what their proxies and servers saw. */
import { curlArgs, type Pod, STATS_PORT, sumCounter } from '../harness/demo-workloads.js';
import { getJson, must } from './target.js';

export * from '../harness/demo-workloads.js';

export async function apply(object: object): Promise<void> {
  await must(['apply', '-f', '-'], JSON.stringify(object));
}

export async function getPod(namespace: string, name: string): Promise<Pod> {
  return getJson<Pod>(['-n', namespace, 'get', 'pod', name]);
}

export async function podsWithLabel(namespace: string, selector: string): Promise<Pod[]> {
  return (await getJson<{ items: Pod[] }>(['-n', namespace, 'get', 'pods', '-l', selector])).items;
}

/** `curl` from the pod's `client` container; returns what the server answered, e.g. `peer=127.0.0.6`. */
export async function curlFrom(namespace: string, pod: string, url: string): Promise<string> {
  const answer = await must(curlArgs(namespace, pod, url));
  return answer.trim();
}

/** The connections a proxy's listener accepted, from its Prometheus text on 15090 (Envoy's own counter name). */
export async function listenerConnections(namespace: string, pod: string, listener: string): Promise<number> {
  const text = await must([
    'get',
    '--raw',
    `/api/v1/namespaces/${namespace}/pods/${pod}:${STATS_PORT}/proxy/stats/prometheus`,
  ]);
  return sumCounter(text, 'envoy_listener_downstream_cx_total', { envoy_listener_address: listener });
}
