/**
 * A lab app: a dual-stack TCP server on each given port that answers a client's hello line with what it saw of
 * the connection (a ServerView as JSON). Prints "listening" once every port accepts connections.
 * Usage: node tcp-server.js PORT...
 */
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { ServerView } from '../tcp-report.js';
import { CLIENT_HELLO, parseProxyProtocolHeader, unmapIPv4 } from '../tcp-report.js';

function answer(socket: Socket): void {
  let proxied: ServerView['proxied'] = null;
  const lines = createInterface({ input: socket });
  lines.on('line', (line) => {
    if (line.startsWith('PROXY ')) {
      proxied = parseProxyProtocolHeader(line.trimEnd());
      return;
    }
    if (line !== CLIENT_HELLO) return;
    const view: ServerView = {
      peer: { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      local: { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 },
      proxied,
    };
    lines.close();
    socket.end(`${JSON.stringify(view)}\n`);
  });
  socket.on('error', () => socket.destroy());
}

function listen(port: number): Promise<void> {
  return new Promise((resolve) =>
    createServer(answer).listen({ port, host: '::', ipv6Only: false }, resolve),
  );
}

await Promise.all(process.argv.slice(2).map((port) => listen(Number(port))));
console.log('listening');
