/**
 * The IPv6 half of the lab's proxy (HAProxy 2.6 cannot read IPv6 original destinations): listens on [::]:OUTBOUND
 * and [::]:INBOUND and forwards each redirected connection to its original destination, from the default source
 * for outbound and from PASSTHROUGH_SOURCE for inbound, with a PROXY protocol header in front like HAProxy's
 * `send-proxy`. Prints "listening" when both listeners are up and one line per forwarded connection.
 * Usage: node ipv6-relay.js OUTBOUND_PORT INBOUND_PORT PASSTHROUGH_SOURCE
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { Endpoint } from '../tcp-report.js';
import { proxyProtocolHeader } from '../tcp-report.js';

const [outboundPort, inboundPort, passthroughSource] = process.argv.slice(2);

/**
 * Node has no getsockopt, so the original destination is read by python3 from the accepted socket, which the
 * child inherits as fd 3: getsockopt(IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST = 80) returns a struct sockaddr_in6.
 * python3 needs no compile step, unlike a C helper; one short process per connection is cheap enough here.
 */
const READ_ORIGINAL_DESTINATION = `
import ipaddress, socket
s = socket.socket(fileno=3)
raw = s.getsockopt(socket.IPPROTO_IPV6, 80, 28)
s.detach()
print(ipaddress.IPv6Address(raw[8:24]), int.from_bytes(raw[2:4], "big"))
`;

function originalDestination(client: Socket): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    const python = spawn('python3', ['-c', READ_ORIGINAL_DESTINATION], {
      stdio: ['ignore', 'pipe', 'pipe', client],
    });
    let output = '';
    for (const stream of [python.stdout, python.stderr]) {
      stream?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    }
    python.on('error', reject);
    python.on('close', (code) => {
      const [address, port] = output.trim().split(' ');
      if (code === 0 && address && port) resolve({ address, port: Number(port) });
      else reject(new Error(`reading the original destination failed: ${output}`));
    });
  });
}

async function forward(direction: string, client: Socket, localAddress?: string): Promise<void> {
  const source = { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
  const destination = await originalDestination(client);
  const upstream = connect({ host: destination.address, port: destination.port, localAddress }, () => {
    console.log(
      `${direction} [${source.address}]:${source.port} -> [${destination.address}]:${destination.port}` +
        ` from [${upstream.localAddress}]:${upstream.localPort}`,
    );
    upstream.write(`${proxyProtocolHeader(source, destination)}\r\n`);
    client.pipe(upstream).pipe(client);
    client.resume();
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
}

function listen(port: number, onConnection: (client: Socket) => void): Promise<void> {
  const server = createServer({ pauseOnConnect: true }, onConnection);
  return new Promise((resolve) => server.listen({ port, host: '::', ipv6Only: true }, resolve));
}

function relay(direction: string, localAddress?: string) {
  return (client: Socket) =>
    forward(direction, client, localAddress).catch((error: Error) => {
      console.error(`${direction}: ${error.message}`);
      client.destroy();
    });
}

await Promise.all([
  listen(Number(outboundPort), relay('outbound')),
  listen(Number(inboundPort), relay('inbound', passthroughSource)),
]);
console.log('listening');
