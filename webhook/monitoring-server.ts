/**
 * The monitoring port (15014, istiod's http-monitoring): `/metrics` over plain HTTP, so Prometheus scrapes it with
 * no TLS configuration and no admission traffic shares it. Nothing else is served here.
 */
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { InjectorMetrics } from './metrics.js';

export const MONITORING_PORT = 15014;
export const METRICS_PATH = '/metrics';

export function buildMonitoringServer({ metrics, logger }: { metrics: InjectorMetrics; logger: Logger }) {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    // A scrape is one small GET; a slow or stalled client gets no more than this.
    requestTimeout: 10_000,
    forceCloseConnections: true,
  });
  app.get(METRICS_PATH, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  return app;
}
