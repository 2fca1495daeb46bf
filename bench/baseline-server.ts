/**
 * The throughput baselines, each run as its own process: a bare Fastify HTTPS server with the webhook's TLS and
 * body settings that parses the AdmissionReview and admits it. Whatever the injector costs beyond this is the
 * injector's own work (decision, rendering, patch, metrics, logging).
 *
 * - bare: answers `allowed: true` (134 bytes), so it pays nothing for the size of the injector's answer;
 * - size-matched (`--response FILE`): answers with the bytes in FILE, the injector's own answer for the same pod,
 *   read once at start. This is the floor for an injector that answers with a patch: the same parse, the same
 *   bytes encrypted and written, and no work to make them.
 *
 * Usage: node dist/bench/baseline-server.js <cert.pem> <key.pem> [--response <answer.json>]; prints {"port":N}
 * once listening.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { BODY_LIMIT_BYTES } from '../webhook/server.js';

const [certPath, keyPath, responseFlag, responsePath] = process.argv.slice(2);
if (
  !certPath ||
  !keyPath ||
  (responseFlag !== undefined && (responseFlag !== '--response' || !responsePath))
) {
  console.error('usage: baseline-server.js <cert.pem> <key.pem> [--response <answer.json>]');
  process.exit(2);
}
const precomputed = responsePath ? readFileSync(responsePath) : undefined;

const app = Fastify({
  bodyLimit: BODY_LIMIT_BYTES,
  keepAliveTimeout: 95_000,
  https: { cert: readFileSync(certPath), key: readFileSync(keyPath), minVersion: 'TLSv1.2' },
});

interface Review {
  apiVersion?: string;
  request?: { uid?: string };
}

if (precomputed) {
  app.post('/inject', async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(precomputed),
  );
} else {
  app.post('/inject', async (request) => {
    const review = request.body as Review;
    return {
      apiVersion: review.apiVersion,
      kind: 'AdmissionReview',
      response: { uid: review.request?.uid, allowed: true },
    };
  });
}

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
