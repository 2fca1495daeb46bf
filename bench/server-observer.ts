/**
 * Preloaded into the webhook process by bench section 5 (`node --import …/server-observer.js`): counts the TCP
 * connections the process accepts (the `net.server.socket` diagnostics channel) and times every HTTP request from
 * its parsed headers to the end of its response (`http.server.request.start` and `http.server.response.finish`),
 * printing the running totals as a JSON line on stderr after each (read back with server-observation.ts). Over
 * TLS every new connection is one handshake, so the count says whether the apiserver reuses its connections; the
 * request time is the webhook's whole share of the apiserver's call, parse and answer included.
 */
import { subscribe } from 'node:diagnostics_channel';
import { observationLine, type ServerObservation } from './server-observation.js';

const totals: ServerObservation = { connections: 0, requests: 0, requestSeconds: 0 };
const started = new WeakMap<object, bigint>();
const print = () => process.stderr.write(observationLine(totals));

subscribe('net.server.socket', () => {
  totals.connections++;
  print();
});
subscribe('http.server.request.start', (message) => {
  started.set((message as { request: object }).request, process.hrtime.bigint());
});
subscribe('http.server.response.finish', (message) => {
  const begun = started.get((message as { request: object }).request);
  if (begun === undefined) return;
  totals.requests++;
  totals.requestSeconds += Number(process.hrtime.bigint() - begun) / 1e9;
  print();
});
