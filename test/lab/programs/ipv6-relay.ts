/**
 * The IPv6 half of the lab's proxy (HAProxy 2.6 cannot read IPv6 original destinations): listens on [::]:OUTBOUND
 * and [::]:INBOUND and forwards each redirected connection to its original destination, from the default source
 * for outbound and from PASSTHROUGH_SOURCE for inbound, with a PROXY protocol header in front like HAProxy's
 * `send-proxy`. Prints "listening" when both listeners are up and one line per forwarded connection.
 * Usage: node ipv6-relay.js OUTBOUND_PORT INBOUND_PORT PASSTHROUGH_SOURCE ORIGINAL_DESTINATION_PROGRAM
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { Endpoint } from '../tcp-report.js';
import { proxyProtocolHeader } from '../tcp-report.js';

const [outboundPort, inboundPort, passthroughSource, originalDestinationProgram = ''] = process.argv.slice(2);

/**
 * Node has no getsockopt, so the original destination (getsockopt(IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST)) is read by
 * the lab's small C program, which gets the accepted socket as its standard input and prints "ADDRESS PORT".
 */
function originalDestination(client: Socket): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    const reader = spawn(originalDestinationProgram, [], { stdio: [client, 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [reader.stdout, reader.stderr]) {
      stream?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    }
    reader.on('error', reject);
    reader.on('close', (code) => {
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
