/**
 * Section 6: what a TLS handshake costs the server, by serving key: ECDSA P-256 (what common/pki.ts and the
 * cert-manager overlay make) against RSA-2048. Each key serves from its own bare baseline server process (a CA of
 * the same type signs it); a client in this process opens new connections one at a time, with no session to
 * resume, so every connection is a full handshake. Reported: the client's median time to a secure connection, and
 * the server process's CPU per handshake from /proc. Rounds alternate between the keys so that load on the machine
 * hits both alike.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { createCA, issueServingCert, type KeyType } from '../common/pki.js';
import { readCpuSeconds, startBaselineServer, type BaselineServer } from './processes.js';
import { serverRuntime } from './server-runtime.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { median, ratio } from './stats.js';

const SECTION = '6. TLS handshakes by serving key';
const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];
const ROUNDS = 5;

interface KeyServer {
  keyType: KeyType;
  caPem: string;
  server: BaselineServer;
  handshakeMs: number[];
  cpuSeconds: number;
}

export async function benchTlsHandshakes(report: Report, handshakes: number): Promise<void> {
  report.section(SECTION);
  const dir = await mkdtemp(join(tmpdir(), 'mesh-injector-bench-tls-'));
  const servers: KeyServer[] = [];
  try {
    for (const keyType of KEY_TYPES) {
      const ca = await createCA({ commonName: `bench ${keyType} CA`, validityDays: 1, keyType });
      const serving = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'], validityDays: 1, keyType });
      const certPath = join(dir, `${keyType}.crt`);
      const keyPath = join(dir, `${keyType}.key`);
      await writeFile(certPath, serving.cert);
      await writeFile(keyPath, serving.key, { mode: 0o600 });
      const server = await startBaselineServer(certPath, keyPath, { env: serverRuntime().env });
      servers.push({ keyType, caPem: ca.cert, server, handshakeMs: [], cpuSeconds: 0 });
    }
    const perRound = Math.max(1, Math.ceil(handshakes / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      for (const entry of servers) {
        const cpuBefore = await readCpuSeconds(entry.server.pid);
        for (let i = 0; i < perRound; i++) entry.handshakeMs.push(await handshake(entry));
        entry.cpuSeconds += (await readCpuSeconds(entry.server.pid)) - cpuBefore;
      }
    }
    const rows = servers.map((entry) => {
      const medianMs = median(entry.handshakeMs);
      const cpuMicros = (entry.cpuSeconds * 1e6) / entry.handshakeMs.length;
      report.figure(SECTION, `${entry.keyType}: handshake, client median`, medianMs, 'ms');
      report.figure(SECTION, `${entry.keyType}: server CPU per handshake`, cpuMicros, 'µs');
      return { keyType: entry.keyType, medianMs, cpuMicros, count: entry.handshakeMs.length };
    });
    const [ecdsa, rsa] = rows;
    report.figure(
      SECTION,
      'RSA-2048 / ECDSA P-256: handshake median',
      ratio(rsa!.medianMs, ecdsa!.medianMs),
      '×',
    );
    report.figure(
      SECTION,
      'RSA-2048 / ECDSA P-256: server CPU',
      ratio(rsa!.cpuMicros, ecdsa!.cpuMicros),
      '×',
    );
    report.details.tlsHandshakes = rows;
    report.table({
      title: `TLS handshakes by serving key (${rows[0]!.count} new connections each)`,
      header: ['Serving key', 'Client median ms', 'Server CPU µs per handshake'],
      rows: [
        ...rows.map((row) => [row.keyType, formatNumber(row.medianMs), formatNumber(row.cpuMicros)]),
        [
          'RSA-2048 / ECDSA P-256',
          formatRatio(ratio(rsa!.medianMs, ecdsa!.medianMs)),
          formatRatio(ratio(rsa!.cpuMicros, ecdsa!.cpuMicros)),
        ],
      ],
      notes: [
        'Bare baseline servers (Fastify HTTPS, TLS 1.3 negotiated with a Node client); a full handshake per ' +
          'connection, no session resumption; server CPU from /proc over all threads, connection set-up and ' +
          'teardown included.',
      ],
    });
  } finally {
    for (const entry of servers) await entry.server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** One new connection, to a secure state and closed; the time to secure, in ms. */
function handshake(entry: KeyServer): Promise<number> {
  const { hostname, port } = new URL(entry.server.origin);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const socket = connect({ host: hostname, port: Number(port), ca: entry.caPem }, () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      socket.end();
      resolve(ms);
    });
    socket.setTimeout(10_000, () =>
      socket.destroy(new Error(`no TLS handshake with ${entry.server.origin}`)),
    );
    socket.once('error', reject);
  });
}
