/**
 * A lab app: an HTTP server on each given port, on all the pod's addresses, that answers every request with what
 * it saw (an HttpView as JSON). Prints "listening" once every port accepts connections.
 * Usage: node http-server.js APP_NAME PORT...
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { HttpView } from '../http-report.js';
import { PROXY_HEADER } from '../http-report.js';
import { unmapIPv4 } from '../tcp-report.js';

const [app = '', ...ports] = process.argv.slice(2);

function answer(request: IncomingMessage, response: ServerResponse): void {
  const { socket } = request;
  const view: HttpView = {
    app,
    peer: { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
    local: { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 },
    proxies: request.headersDistinct[PROXY_HEADER] ?? [],
  };
  response.setHeader('content-type', 'application/json');
  response.end(`${JSON.stringify(view)}\n`);
}

function listen(port: number): Promise<void> {
  return new Promise((resolve) =>
    createServer(answer).listen({ port, host: '::', ipv6Only: false }, resolve),
  );
}

await Promise.all(ports.map((port) => listen(Number(port))));
console.log('listening');
