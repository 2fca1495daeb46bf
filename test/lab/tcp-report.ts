/** What the lab's TCP server saw of one connection; the server sends it back to the client as one JSON line. */
export interface Endpoint {
  address: string;
  port: number;
}

export interface ServerView {
  /** The TCP peer: the client itself, or the proxy when the connection came through it. */
  peer: Endpoint;
  /** The address and port the connection arrived on. */
  local: Endpoint;
  /**
   * The PROXY protocol header the lab's proxy puts in front of every connection it forwards: the client and the
   * original destination as the proxy saw them. Null when the connection did not pass through the proxy.
   */
  proxied: { source: Endpoint; destination: Endpoint } | null;
}

/** The line a client sends after connecting; the server answers it with the ServerView. */
export const CLIENT_HELLO = 'hello';

/** A PROXY protocol v1 header line, without its CRLF. */
export function proxyProtocolHeader(source: Endpoint, destination: Endpoint): string {
  const family = source.address.includes(':') ? 'TCP6' : 'TCP4';
  return `PROXY ${family} ${source.address} ${destination.address} ${source.port} ${destination.port}`;
}

export function parseProxyProtocolHeader(line: string): ServerView['proxied'] {
  const [keyword, , sourceAddress, destinationAddress, sourcePort, destinationPort] = line.split(' ');
  if (keyword !== 'PROXY' || !sourceAddress || !destinationAddress || !sourcePort || !destinationPort) {
    throw new Error(`not a PROXY protocol v1 header: ${line}`);
  }
  return {
    source: { address: sourceAddress, port: Number(sourcePort) },
    destination: { address: destinationAddress, port: Number(destinationPort) },
  };
}

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}
