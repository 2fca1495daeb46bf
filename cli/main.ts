#!/usr/bin/env node
/** The `mesh-injector` command: serve the webhook (inject and check follow on the same code). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { serve } from './serve.js';

const program = new Command()
  .name('mesh-injector')
  .description('Istio-compatible sidecar injector')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the admission webhook over HTTPS')
  .addOption(
    new Option('--port <port>', 'HTTPS port').env('MESH_INJECTOR_PORT').default(9443).argParser(port),
  )
  .addOption(
    new Option('--host <address>', 'address to listen on').env('MESH_INJECTOR_HOST').default('0.0.0.0'),
  )
  .addOption(
    new Option('--tls-cert <file>', 'serving certificate (PEM)')
      .env('MESH_INJECTOR_TLS_CERT')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option('--tls-key <file>', 'serving key (PEM)').env('MESH_INJECTOR_TLS_KEY').makeOptionMandatory(),
  )
  .addOption(
    new Option('--config <dir>', 'config directory: template.yaml, values.yaml, envoy.yaml')
      .env('MESH_INJECTOR_CONFIG')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option('--kubeconfig <file>', 'kubeconfig for the apiserver version (default: in-cluster)').env(
      'KUBECONFIG',
    ),
  )
  .addOption(
    new Option('--shutdown-delay <ms>', 'after SIGTERM, how long readiness fails before the server closes')
      .env('MESH_INJECTOR_SHUTDOWN_DELAY')
      .default(5000)
      .argParser(nonNegative),
  )
  .addOption(
    new Option('--log-level <level>', 'pino log level').env('MESH_INJECTOR_LOG_LEVEL').default('info'),
  )
  .action(async (options: CommandOptions) => {
    const webhook = await serve({
      port: options.port,
      host: options.host,
      tlsCert: options.tlsCert,
      tlsKey: options.tlsKey,
      config: options.config,
      kubeconfig: options.kubeconfig,
      shutdownDelayMs: options.shutdownDelay,
      logLevel: options.logLevel,
      certificates: options.manageCertificates
        ? {
            namespace: options.namespace,
            service: options.service,
            secret: options.certificateSecret,
            webhookConfiguration: options.webhookConfiguration,
            checkIntervalMs: 60 * 60 * 1000,
          }
        : undefined,
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        webhook.shutdown().then(
          () => process.exit(0),
          (error: unknown) => {
            console.error(error);
            process.exit(1);
          },
        );
      });
    }
  });

interface CommandOptions {
  port: number;
  host: string;
  tlsCert: string;
  tlsKey: string;
  config: string;
  kubeconfig?: string;
  shutdownDelay: number;
  logLevel: string;
  manageCertificates?: boolean;
  namespace: string;
  service: string;
  certificateSecret: string;
  webhookConfiguration: string;
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new InvalidArgumentError('not a port (0-65535)');
  return parsed;
}

function nonNegative(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError('not a whole number of milliseconds');
  return parsed;
}

await program.parseAsync();
