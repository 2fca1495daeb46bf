/**
 * The throughput baselines, each run as its own process: a bare Fastify HTTPS server with the webhook's TLS and
 * body settings that parses the AdmissionReview and admits it. Whatever the injector costs beyond this is the
 * injector's own work (decision, rendering, patch, metrics, logging).
 *
 * - bare: answers `allowed: true` (134 bytes), so it pays nothing for the size of the injector's answer;
 * - size-matched (`--response FILE`): answers with the bytes in FILE, the injector's own answer for the same pod,
 *   read once at start. This is the floor for an injector that answers with a patch: the same parse, the same
 *   bytes encrypted and written, and no work to make them.
 * - with `--echo-uid` as well: the same answer, with the review's uid in place of the one in FILE, so that a real
 *   kube-apiserver accepts it (it refuses an answer for another uid). Section 5 points a webhook at it: a webhook
 *   with no work of its own that answers with the injector's own patch.
 *
 * Usage: node dist/bench/baseline-server.js <cert.pem> <key.pem> [--response <answer.json> [--echo-uid]]; prints
 * {"port":N} once listening.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
// Only the constant: the baselines load Fastify and nothing of the webhook's.
import { BODY_LIMIT_BYTES } from '../common/constants.js';

const [certPath, keyPath, responseFlag, responsePath, echoFlag, ...extra] = process.argv.slice(2);
if (
  !certPath ||
  !keyPath ||
  (responseFlag !== undefined && (responseFlag !== '--response' || !responsePath)) ||
  (echoFlag !== undefined && echoFlag !== '--echo-uid') ||
  extra.length > 0
) {
  console.error('usage: baseline-server.js <cert.pem> <key.pem> [--response <answer.json> [--echo-uid]]');
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

if (precomputed && echoFlag) {
  const answerFor = answerWithUid(precomputed.toString('utf8'));
  app.post('/inject', async (request, reply) =>
    reply
      .type('application/json; charset=utf-8')
      .send(answerFor((request.body as Review).request?.uid ?? '')),
  );
} else if (precomputed) {
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

/** The answer's text around its uid, put back together around another one. */
function answerWithUid(answer: string): (uid: string) => string {
  const uid = (JSON.parse(answer) as { response?: { uid?: unknown } }).response?.uid;
  const field = `"uid":${JSON.stringify(uid)}`;
  const at = answer.indexOf(field);
  if (typeof uid !== 'string' || at < 0 || answer.includes(field, at + 1)) {
    throw new Error('--echo-uid: the answer must hold response.uid once');
  }
  const before = `${answer.slice(0, at)}"uid":`;
  const after = answer.slice(at + field.length);
  return (requestUid) => before + JSON.stringify(requestUid) + after;
}

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
