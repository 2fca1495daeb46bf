/**
 * The webhook as the real process that `mesh-injector serve` runs: TLS, certificate rotation and graceful
 * shutdown. No root or control plane needed.
 */
import { writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { issueServingCert } from '../common/pki.js';
import { admissionReview, typicalPod } from './fixtures/pods.js';
import { getStatus, startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

let webhook: WebhookProcess | undefined;

afterEach(async () => {
  await webhook?.stop();
  webhook = undefined;
});

function peerFingerprint(url: string, caPem: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect(
      { host: hostname, port: Number(port), ca: caPem, servername: 'localhost' },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.once('error', reject);
  });
}

function postReview(url: string, caPem: string, agent?: Agent): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(admissionReview(typicalPod()));
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/inject`,
      { method: 'POST', ca: caPem, agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}

describe('the webhook process', () => {
  it('speaks TLS 1.2 or newer and refuses TLS 1.1', async () => {
    webhook = await startWebhookProcess();
    const { hostname, port } = new URL(webhook.url);
    const negotiated = await new Promise<string | null>((resolve, reject) => {
      const socket = connect(
        { host: hostname, port: Number(port), ca: webhook!.ca.cert, servername: 'localhost' },
        () => {
          resolve(socket.getProtocol());
          socket.end();
        },
      );
      socket.once('error', reject);
    });
    expect(['TLSv1.2', 'TLSv1.3']).toContain(negotiated);
    const old = new Promise((resolve, reject) => {
      const socket = connect({
        host: hostname,
        port: Number(port),
        ca: webhook!.ca.cert,
        maxVersion: 'TLSv1.1',
        minVersion: 'TLSv1',
      });
      socket.once('secureConnect', () => reject(new Error('TLS 1.1 was accepted')));
      socket.once('error', resolve);
    });
    await expect(old).resolves.toBeInstanceOf(Error);
  });

  it('serves a rotated certificate to new connections while keep-alive connections go on', async () => {
    webhook = await startWebhookProcess();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await postReview(webhook.url, webhook.ca.cert, agent)).status).toBe(200);
    const before = await peerFingerprint(webhook.url, webhook.ca.cert);

    const renewed = await issueServingCert(webhook.ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityDays: 2,
    });
    await writeFile(webhook.keyPath, renewed.key);
    await writeFile(webhook.certPath, renewed.cert);

    let after = before;
    for (let i = 0; i < 100 && after === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await peerFingerprint(webhook.url, webhook.ca.cert);
    }
    expect(after).not.toBe(before);
    expect((await postReview(webhook.url, webhook.ca.cert, agent)).status).toBe(200);
    agent.destroy();
    expect(await webhook.logLine((line) => line.includes('serving certificate reloaded'))).toBeDefined();
  });

  it('on SIGTERM fails readiness first, finishes the request in flight, then exits 0', async () => {
    webhook = await startWebhookProcess({ shutdownDelayMs: 1500 });
    const { url, ca } = webhook;

    // A request whose body is only half sent when SIGTERM arrives.
    const payload = JSON.stringify(admissionReview(typicalPod()));
    let firstHalfSent: () => void = () => undefined;
    const sent = new Promise<void>((resolve) => (firstHalfSent = resolve));
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${url}/inject`,
        {
          method: 'POST',
          ca: ca.cert,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.once('error', reject);
      // The callback runs once the first bytes are handed to the connection, after the TLS handshake.
      req.write(payload.slice(0, 100), () => firstHalfSent());
      setTimeout(() => req.end(payload.slice(100)), 2500);
    });
    await sent;

    webhook.kill('SIGTERM');
    let readiness = 200;
    for (let i = 0; i < 20 && readiness === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      readiness = await getStatus(`${url}/readyz`, ca.cert);
    }
    expect(readiness).toBe(503);

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).response.allowed).toBe(true);
    expect(await webhook.exited).toBe(0);
    // The log is written asynchronously: every line, the last one included, is out before the process exits (what
    // it wrote is still in the pipe, read shortly after the exit).
    const messages = () =>
      webhook!.logs().map((line) => (line.startsWith('{') ? JSON.parse(line).msg : line));
    await vi.waitFor(() => expect(messages()).toContain('shut down'), { timeout: 5_000 });
    expect(messages()).toEqual(
      expect.arrayContaining(['shutting down: readiness now fails', 'sidecar injected', 'shut down']),
    );
    expect(messages().at(-1)).toBe('shut down');
  });
});
