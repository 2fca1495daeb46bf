/**
 * The throughput baseline, run as its own process: a bare Fastify HTTPS server with the webhook's TLS and body
 * settings that parses the AdmissionReview and admits it unchanged. Whatever the injector costs beyond this is the
 * injector's own work (decision, rendering, patch, metrics, logging).
 *
 * Usage: node dist/bench/baseline-server.js <cert.pem> <key.pem>; prints {"port":N} once listening.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { BODY_LIMIT_BYTES } from '../webhook/server.js';

const [certPath, keyPath] = process.argv.slice(2);
if (!certPath || !keyPath) {
  console.error('usage: baseline-server.js <cert.pem> <key.pem>');
  process.exit(2);
}

const app = Fastify({
  bodyLimit: BODY_LIMIT_BYTES,
  keepAliveTimeout: 95_000,
  https: { cert: readFileSync(certPath), key: readFileSync(keyPath), minVersion: 'TLSv1.2' },
});

interface Review {
  apiVersion?: string;
  request?: { uid?: string };
}

app.post('/inject', async (request) => {
  const review = request.body as Review;
  return {
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: { uid: review.request?.uid, allowed: true },
  };
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
