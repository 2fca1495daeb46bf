/**
 * The webhook's transport, over real TLS sockets: HTTP/1.1 only (ALPN never negotiates h2), the body limit, and
 * timeouts that cut off a client which stalls mid-request (or mid-headers, or before the TLS handshake) without
 * tying up the server: other requests keep being answered meanwhile. The server is built in process with a short
 * request timeout so the cut-off can be watched; the real process gets the same settings with a 10 s default.
 */
import { connect as connectHttp2 } from 'node:http2';
import { Agent, request } from 'node:https';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../common/constants.js';
import { createCA, issueServingCert, type CertificateAuthority } from '../common/pki.js';
import { createMetrics } from '../webhook/metrics.js';
import { buildServer, type InjectorServer } from '../webhook/server.js';
import { admissionReview, shippedConfig, typicalPod } from './fixtures/pods.js';
import { startWebhookProcess } from './harness/webhook-process.js';

const REQUEST_TIMEOUT_MS = 1_500;
/** Node checks the request timeout once a second (the server's connectionsCheckingInterval), plus scheduling slack. */
const CUT_OFF_DEADLINE_MS = REQUEST_TIMEOUT_MS + 1_000 + 2_000;

interface Listening {
  app: InjectorServer;
  port: number;
  ca: CertificateAuthority;
  setReady(ready: boolean): void;
}

async function listen(): Promise<Listening> {
  const ca = await createCA({ commonName: 'transport-test-ca', validityDays: 1 });
  const serving = await issueServingCert(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: 1,
  });
  const config = await shippedConfig();
  let ready = true;
  const app = buildServer({
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    tls: { cert: serving.cert, key: serving.key },
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    state: {
      config: () => config,
      notReadyReason: () => (ready ? undefined : 'shutting down'),
      nativeSidecars: () => false,
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, port: (app.server.address() as AddressInfo).port, ca, setReady: (value) => (ready = value) };
}

function tlsConnect(server: { port: number; ca: CertificateAuthority }, alpn?: string[]): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port: server.port,
        ca: server.ca.cert,
        servername: 'localhost',
        ALPNProtocols: alpn,
      },
      () => resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** A raw client: what it received, and a promise that settles when the server closes the socket. */
function watch(socket: TLSSocket | Socket) {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { received: () => received, closed, isClosed: () => socket.destroyed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)),
  ]);
}

function postReview(server: Listening, agent: Agent | false = false) {
  const body = JSON.stringify(admissionReview(typicalPod()));
  return new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/inject',
        method: 'POST',
        ca: server.ca.cert,
        servername: 'localhost',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }),
        );
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

describe('transport', () => {
  let server: Listening;
  beforeAll(async () => {
    server = await listen();
  });
  afterAll(() => server?.app.close());

  it('negotiates http/1.1 when offered with h2, and refuses a client that offers only h2', async () => {
    const both = await tlsConnect(server, ['h2', 'http/1.1']);
    expect(both.alpnProtocol).toBe('http/1.1');
    both.destroy();
    await expect(tlsConnect(server, ['h2'])).rejects.toThrow(/no application protocol|ALPN/i);
  });

  it('fails an HTTP/2 client', async () => {
    const session = connectHttp2(`https://127.0.0.1:${server.port}`, {
      ca: server.ca.cert,
      servername: 'localhost',
    });
    const outcome = await new Promise<string>((resolve) => {
      session.once('error', (error) => resolve(`error: ${error.message}`));
      session.once('connect', () => resolve('connected'));
    });
    session.destroy();
    expect(outcome).toMatch(/^error: /);
  });

  it('answers a body over the limit with 413 and a reason, without reading it', async () => {
    const socket = await tlsConnect(server);
    const client = watch(socket);
    socket.write(
      'POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${BODY_LIMIT_BYTES + 1}\r\n\r\n{"kind":`,
    );
    await within(
      (async () => {
        while (!client.received().includes('\r\n\r\n{'))
          await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      5_000,
      'an answer',
    );
    expect(client.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(client.received()).toContain('"message"');
    socket.destroy();
  });

  it('cuts off clients stalled mid-body or mid-headers, and serves others meanwhile', async () => {
    const review = JSON.stringify(admissionReview(typicalPod()));
    const stalledBodies = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const socket = await tlsConnect(server);
        const client = watch(socket);
        socket.write(
          'POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${Buffer.byteLength(review)}\r\n\r\n${review.slice(0, 200)}`,
        );
        return client;
      }),
    );
    const stalledHeaders = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const socket = await tlsConnect(server);
        const client = watch(socket);
        socket.write('POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Ty');
        return client;
      }),
    );
    const stalled = [...stalledBodies, ...stalledHeaders];

    // While every stalled client still holds its connection, other requests are answered.
    const answers = await Promise.all(Array.from({ length: 20 }, () => postReview(server)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    expect(stalled.map((client) => client.isClosed())).toEqual(Array(stalled.length).fill(false));

    await within(Promise.all(stalled.map((client) => client.closed)), CUT_OFF_DEADLINE_MS, 'the cut-off');
    for (const client of stalledBodies) expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that never completes the TLS handshake', async () => {
    const socket = connectTcp({ host: '127.0.0.1', port: server.port });
    const client = watch(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(Buffer.from([0x16, 0x03, 0x01])); // the first bytes of a ClientHello, then nothing
    await within(client.closed, CUT_OFF_DEADLINE_MS, 'closing a stalled handshake');
  });

  it('closes each connection after answering while not ready, so pooled clients move to ready replicas', async () => {
    const agent = new Agent({ keepAlive: true });
    expect((await postReview(server, agent)).connection).toBe('keep-alive');
    server.setReady(false);
    try {
      const answer = await postReview(server, agent);
      expect(answer.status).toBe(200);
      expect(answer.connection).toBe('close');
    } finally {
      server.setReady(true);
      agent.destroy();
    }
  });
});

describe('transport of the real process', () => {
  it('refuses h2 and speaks http/1.1', async () => {
    const webhook = await startWebhookProcess();
    try {
      const target = { port: webhook.port, ca: webhook.ca };
      const socket = await tlsConnect(target, ['h2', 'http/1.1']);
      expect(socket.alpnProtocol).toBe('http/1.1');
      socket.destroy();
      await expect(tlsConnect(target, ['h2'])).rejects.toThrow(/no application protocol|ALPN/i);
    } finally {
      await webhook.stop();
    }
  });
});
