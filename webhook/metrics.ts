/**
 * Prometheus metrics with Istio's injector names (pkg/kube/inject/monitoring.go), plus Node's process metrics.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface InjectorMetrics {
  registry: Registry;
  requests: Counter;
  success: Counter;
  failure: Counter<'reason'>;
  skip: Counter<'reason'>;
  duration: Histogram;
  configReloads: Counter<'result'>;
}

export function createMetrics(): InjectorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'sidecar_injection_requests_total',
      help: 'Total number of injection requests.',
      registers,
    }),
    success: new Counter({
      name: 'sidecar_injection_success_total',
      help: 'Total number of injection requests answered with an admission response.',
      registers,
    }),
    failure: new Counter({
      name: 'sidecar_injection_failure_total',
      help: 'Total number of failed injection requests, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    skip: new Counter({
      name: 'sidecar_injection_skip_total',
      help: 'Total number of skipped injection requests, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    // Istio's buckets, with finer ones below 100 ms where this injector answers.
    duration: new Histogram({
      name: 'sidecar_injection_time_seconds',
      help: 'Total time taken for injection, in seconds.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1, 3, 5, 10, 20, 30, 60],
      registers,
    }),
    configReloads: new Counter({
      name: 'mesh_injector_config_reloads_total',
      help: 'Configuration loads, by result; a failure keeps the last good configuration.',
      labelNames: ['result'],
      registers,
    }),
  };
}
