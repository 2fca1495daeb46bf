/**
 * The webhook's HTTPS server: `POST /inject` (and Istio's `/inject/...` path-parameter form), `/healthz`,
 * `/readyz` and `/metrics`. HTTP/1.1 only, as the apiserver calls webhooks.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { BODY_LIMIT_BYTES, INJECT_PATH } from '../common/constants.js';
import {
  admissionResponseJson,
  parseAdmissionReview,
  type AdmissionReview,
  type Verdict,
} from './admission.js';
import type { InjectorConfig } from './config.js';
import type { InjectionContext } from './inject.js';
import type { InjectorMetrics } from './metrics.js';
import { podName, reviewRequest, type ReviewOutcome } from './review.js';
import { MIN_TLS_VERSION } from './tls-reloader.js';

export interface ServerState {
  /** The configuration in use, or undefined while none has loaded. */
  config(): InjectorConfig | undefined;
  /** Why the injector is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  /** Native sidecars for pods that do not choose, under this configuration. */
  nativeSidecars(config: InjectorConfig): InjectionContext['nativeSidecars'];
}

export interface ServerOptions {
  state: ServerState;
  metrics: InjectorMetrics;
  logger: Logger;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** How long a request may take to arrive in full; a stalled client is cut off after this. */
  requestTimeoutMs?: number;
}

/**
 * Longer than the apiserver's idle-connection timeout (90 s), so the server never closes a connection that the
 * client is about to reuse.
 */
const KEEP_ALIVE_TIMEOUT_MS = 95_000;

export function buildServer({ state, metrics, logger, tls, requestTimeoutMs = 10_000 }: ServerOptions) {
  // Node checks requestTimeout and headersTimeout only every connectionsCheckingInterval (30 s by default), so a
  // stalled client would hold its socket up to 30 s past the timeout; check every second instead.
  const timeouts = {
    headersTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs),
    // A client that opens a connection and never finishes the TLS handshake (Node's default is 120 s).
    handshakeTimeout: requestTimeoutMs,
  };
  const app = Fastify({
    loggerInstance: logger,
    // One log line per admission review, written by the handler, instead of Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests log through the server's logger itself: a pino child per request (for Fastify's reqId, which says
    // less than the review's uid that every review line carries) cost a few microseconds on every review.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A socket with no traffic at all for this long is closed, whatever state it is in; idle keep-alive sockets are
    // closed earlier by keepAliveTimeout.
    connectionTimeout: KEEP_ALIVE_TIMEOUT_MS + 5_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ...(tls
      ? {
          https: {
            cert: tls.cert,
            key: tls.key,
            minVersion: MIN_TLS_VERSION,
            // HTTP/1.1 only, as the apiserver calls webhooks; a client offering only h2 is refused.
            ALPNProtocols: ['http/1.1'],
            ...timeouts,
          },
        }
      : { http: timeouts }),
  });

  // AdmissionReviews are JSON; without this, Fastify would hand text/plain bodies to the handler as strings.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const message =
      statusCode === 415
        ? `invalid Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')}, want application/json`
        : error.message;
    if (request.url.startsWith(INJECT_PATH)) {
      metrics.requests.inc();
      metrics.failure.inc({ reason: statusCode === 500 ? 'internal' : `http-${statusCode}` });
    }
    if (statusCode === 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ statusCode, reason: message }, 'request rejected');
    void reply.code(statusCode).send({ error: reasonPhrase(statusCode), message });
  });

  // A replica that is not ready (shutting down, or without configuration) answers, then closes the connection:
  // the apiserver pools keep-alive connections by Service host name and would otherwise go on reusing them, and
  // a connection closed under it when the process exits fails a request that is not retried.
  // A callback hook, not an async one: it runs on every request, and an async hook costs a promise and a tick.
  app.addHook('onRequest', (_request, reply, done) => {
    if (state.notReadyReason() !== undefined) void reply.header('connection', 'close');
    done();
  });

  // sidecar_injection_time_seconds times the whole request, from its arrival to the answer sent (body read and
  // parsed, review, answer written), as Istio's serveInject does: that is the webhook's share of the apiserver's call.
  app.addHook('onResponse', (request, reply, done) => {
    if (request.url.startsWith(INJECT_PATH)) metrics.duration.observe(reply.elapsedTime / 1000);
    done();
  });

  const inject = (request: FastifyRequest, reply: FastifyReply) =>
    handleInject(request, reply, state, metrics);
  app.post(INJECT_PATH, inject);
  app.post(`${INJECT_PATH}/*`, inject);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = state.notReadyReason();
    return reason === undefined ? { status: 'ready' } : reply.code(503).send({ status: 'not ready', reason });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  return app;
}

function handleInject(
  request: FastifyRequest,
  reply: FastifyReply,
  state: ServerState,
  metrics: InjectorMetrics,
) {
  const started = process.hrtime.bigint();
  metrics.requests.inc();
  const elapsedSeconds = () => Number(process.hrtime.bigint() - started) / 1e9;

  const parsed = parseAdmissionReview(request.body);
  if (!parsed.ok) {
    metrics.failure.inc({ reason: 'malformed' });
    request.log.info({ reason: parsed.reason }, 'malformed admission review');
    return reply.code(400).send({ error: 'Bad Request', message: parsed.reason });
  }
  const { review } = parsed;
  const uid = review.request.uid;
  const config = state.config();
  if (!config) {
    metrics.failure.inc({ reason: 'no-config' });
    const message = `mesh-injector has no valid configuration: ${state.notReadyReason() ?? 'not loaded'}`;
    request.log.error({ uid }, message);
    return sendReview(reply, review, { allowed: false, message });
  }

  const outcome = reviewRequest(review.request, { ...config, nativeSidecars: state.nativeSidecars(config) });
  const durationMs = Math.round(elapsedSeconds() * 1e6) / 1e3;
  if (outcome.outcome === 'passthrough') {
    metrics.success.inc();
    return sendReview(reply, review, { allowed: true });
  }
  if (outcome.outcome === 'malformed') {
    metrics.failure.inc({ reason: 'malformed' });
    request.log.info({ uid, reason: outcome.reason }, 'malformed admission review');
    return reply.code(400).send({ error: 'Bad Request', message: outcome.reason });
  }
  // The answer goes out first: its bytes are written to the socket before send returns, so the log lines and
  // metrics below are off the apiserver's wait.
  void sendReview(reply, review, verdictOf(outcome));
  logOutcome(request.log, metrics, outcome, uid, durationMs);
  return reply;
}

type DecidedOutcome = Exclude<ReviewOutcome, { outcome: 'passthrough' | 'malformed' }>;

function verdictOf(outcome: DecidedOutcome): Verdict {
  const { warnings } = outcome;
  switch (outcome.outcome) {
    case 'skipped':
      return { allowed: true, warnings };
    case 'denied':
      return { allowed: false, message: outcome.message, warnings };
    case 'injected':
      return { allowed: true, patch: outcome.patch, warnings };
  }
}

function logOutcome(
  log: FastifyBaseLogger,
  metrics: InjectorMetrics,
  outcome: DecidedOutcome,
  uid: string,
  durationMs: number,
): void {
  const fields = {
    uid,
    namespace: outcome.namespace,
    pod: podName(outcome.pod),
    decision: outcome.outcome,
    durationMs,
  };
  for (const warning of outcome.warnings)
    log.warn({ uid, namespace: outcome.namespace, pod: fields.pod }, warning);
  metrics.success.inc();
  switch (outcome.outcome) {
    case 'skipped':
      metrics.skip.inc({ reason: outcome.reason });
      log.info({ ...fields, reason: outcome.reason }, 'injection skipped');
      return;
    case 'denied':
      metrics.failure.inc({ reason: 'invalid-annotation' });
      log.warn({ ...fields, annotations: outcome.annotations, reason: outcome.message }, 'injection denied');
      return;
    case 'injected':
      log.info({ ...fields, patchOperations: outcome.patch.length }, 'sidecar injected');
  }
}

/** The answer as JSON text: admissionResponseJson writes the patch into it without serialising it twice. */
function sendReview(reply: FastifyReply, review: AdmissionReview, verdict: Verdict) {
  return reply.type('application/json; charset=utf-8').send(admissionResponseJson(review, verdict));
}

function reasonPhrase(statusCode: number): string {
  return (
    {
      400: 'Bad Request',
      404: 'Not Found',
      408: 'Request Timeout',
      413: 'Payload Too Large',
      415: 'Unsupported Media Type',
    }[statusCode] ?? (statusCode >= 500 ? 'Internal Server Error' : 'Client Error')
  );
}

export type InjectorServer = ReturnType<typeof buildServer>;
