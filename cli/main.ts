#!/usr/bin/env node
/** The `mesh-injector` command: serve the webhook, inject manifests offline, check an installation. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { IMAGE_ENV, WEBHOOK_CONFIGURATION_NAME } from '../common/constants.js';
import { MONITORING_PORT } from '../webhook/monitoring-server.js';
import { parseImageReference, ValueProblem } from '../webhook/syntax.js';
import { INJECT_FLAGS, type InjectFlagOptions } from './inject-options.js';
import { INSTALLED_CONFIG_NAMES } from './installed-config.js';
import { serve } from './serve.js';
import { formatVersion, versionInfo } from './version.js';

const program = new Command()
  .name('mesh-injector')
  .description('Istio-compatible sidecar injector')
  .version(formatVersion(versionInfo()), '-v, --version', 'print the version and the Node.js version')
  .showHelpAfterError();

program
  .command('version')
  .description('print the version and the Node.js version')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
  .action((options: { output: 'text' | 'json' }) => {
    const info = versionInfo();
    process.stdout.write(
      options.output === 'json' ? `${JSON.stringify(info)}\n` : `${formatVersion(info)}\n`,
    );
  });

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
    new Option('--monitoring-port <port>', 'plain-HTTP port serving only /metrics (0: a free port)')
      .env('MESH_INJECTOR_MONITORING_PORT')
      .default(MONITORING_PORT)
      .argParser(port),
  )
  .addOption(new Option('--no-monitoring', 'serve no monitoring port (/metrics stays on the HTTPS port)'))
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
    new Option('--proxy-image <image>', "the proxy image to inject, instead of values.yaml's images.proxy")
      .env(IMAGE_ENV.proxy)
      .argParser(imageReference),
  )
  .addOption(
    new Option('--init-image <image>', "the init image to inject, instead of values.yaml's images.init")
      .env(IMAGE_ENV.init)
      .argParser(imageReference),
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
  .addOption(
    new Option(
      '--manage-certificates',
      'keep the CA, serving certificate and caBundle in the cluster (no cert-manager)',
    ).env('MESH_INJECTOR_MANAGE_CERTIFICATES'),
  )
  .addOption(
    new Option('--namespace <name>', "the webhook's namespace").env('POD_NAMESPACE').default('mesh-injector'),
  )
  .addOption(new Option('--service <name>', 'the Service the apiserver calls').default('mesh-injector'))
  .addOption(
    new Option('--certificate-secret <name>', 'the Secret holding the CA and serving pair').default(
      'mesh-injector-tls',
    ),
  )
  .addOption(
    new Option(
      '--webhook-configuration <name>',
      'the MutatingWebhookConfiguration whose caBundle to keep',
    ).default(WEBHOOK_CONFIGURATION_NAME),
  )
  .action(async (options: CommandOptions) => {
    const starting = serve({
      port: options.port,
      host: options.host,
      monitoringPort: options.monitoring ? options.monitoringPort : undefined,
      tlsCert: options.tlsCert,
      tlsKey: options.tlsKey,
      config: options.config,
      images: { proxy: options.proxyImage, init: options.initImage },
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
    // A start that fails (an unreadable certificate, a port in use) is one line and exit 1, not a stack trace; the
    // exit also stops whatever had started.
    const webhook = await starting.catch((error: unknown) => {
      process.stderr.write(`error: the webhook did not start: ${(error as Error).message}\n`);
      process.exit(1);
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

const inject = program
  .command('inject')
  .description(
    'inject the sidecar into the pod templates of manifests, like istioctl kube-inject: Pod, Deployment, ' +
      'StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and List; other kinds pass through. ' +
      "Uses the cluster's installed configuration (ConfigMap mesh-injector-config) when a cluster answers, else " +
      'the packaged one, and says which on stderr',
  )
  .requiredOption(
    '-f, --filename <file...>',
    'manifest file, directory (*.yaml, *.yml, *.json, recursively) or - for stdin; repeatable',
  );
for (const { flags, description } of INJECT_FLAGS) inject.option(flags, description);
inject
  .addOption(new Option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config)'))
  .option('--context <name>', 'kubeconfig context')
  .option('--namespace <name>', "the injector's namespace in the cluster", INSTALLED_CONFIG_NAMES.namespace)
  .action(async (options: InjectCommandOptions) => {
    if ([options.config, options.profile].filter(Boolean).length + (options.offline ? 1 : 0) > 1) {
      process.stderr.write('error: use one of --config, --profile and --offline\n');
      process.exitCode = 2;
      return;
    }
    // Loaded on use, so each command starts without the others' dependencies.
    const { runInject } = await import('./inject.js');
    const { loadCliKubeConfig } = await import('./kubeconfig.js');
    const { apiErrorSummary, readInstalledConfig } = await import('./installed-config.js');
    process.exitCode = await runInject(
      { ...options, files: options.filename },
      {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
        stdin: readStdin,
        installedConfig: async () => {
          const loaded = loadCliKubeConfig(options);
          if (!loaded.ok) throw new Error(loaded.reason);
          const names = { ...INSTALLED_CONFIG_NAMES, namespace: options.namespace };
          try {
            const config = await readInstalledConfig(loaded.kubeConfig, names);
            const where = `ConfigMap ${names.namespace}/${names.configMap} in context ${loaded.kubeConfig.getCurrentContext()}`;
            return { config, where };
          } catch (error) {
            throw new Error(
              `ConfigMap ${names.namespace}/${names.configMap} in context ${loaded.kubeConfig.getCurrentContext()}: ${apiErrorSummary(error)}`,
              { cause: error },
            );
          }
        },
      },
    );
  });

type InjectCommandOptions = InjectFlagOptions & {
  filename: string[];
  kubeconfig?: string;
  context?: string;
  namespace: string;
};

program
  .command('check')
  .description(
    'check the installation against the current kubeconfig: webhook configuration, caBundle and serving ' +
      'certificate, Service endpoints, injection namespaces, pods that need a restart',
  )
  .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
  .option('--namespace <name>', "the injector's namespace", 'mesh-injector')
  .option('--service <name>', "the injector's Service", 'mesh-injector')
  .option('--webhook-configuration <name>', 'the MutatingWebhookConfiguration', WEBHOOK_CONFIGURATION_NAME)
  .option('--secret <name>', 'the Secret holding the serving certificate (tls.crt)', 'mesh-injector-tls')
  .option('--config-map <name>', "the ConfigMap holding the injector's configuration", 'mesh-injector-config')
  .option('--config <dir>', 'compare pods with this config directory instead of the ConfigMap')
  .addOption(
    // Not bound to KUBECONFIG: it is read as kubectl reads it, including a colon-separated list of files.
    new Option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config)'),
  )
  .option('--context <name>', 'kubeconfig context (default: the current one)')
  .addOption(
    new Option('--wait <duration>', 'retry until every check passes, up to this long (e.g. 30s, 5m)')
      .default(0, '0s')
      .argParser(duration),
  )
  .option(
    '--pre',
    'check before installing: Kubernetes version, your RBAC, no other injector on the same labels',
  )
  .addOption(
    new Option('--timeout <ms>', 'for the TLS handshake with a url webhook')
      .default(5000)
      .argParser(nonNegative),
  )
  .action(async (options: CheckCommandOptions) => {
    if (options.pre) {
      process.exitCode = await runPreCheck(options);
      return;
    }
    const { InjectorConfigError, runCheck } = await import('./check.js');
    try {
      process.exitCode = await runCheck(
        { ...options, output: options.output, timeoutMs: options.timeout, waitMs: options.wait },
        (text) => process.stdout.write(text),
      );
    } catch (error) {
      if (!(error instanceof InjectorConfigError)) throw error;
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = 2;
    }
  });

async function runPreCheck(options: CheckCommandOptions): Promise<number> {
  const { loadCliKubeConfig } = await import('./kubeconfig.js');
  const { evaluatePreChecks, gatherPreSnapshot } = await import('./check-pre.js');
  const { apiErrorSummary } = await import('./installed-config.js');
  const { formatReport } = await import('./check-output.js');
  const loaded = loadCliKubeConfig(options);
  if (!loaded.ok) {
    process.stderr.write(`error: ${loaded.reason}\n`);
    return 1;
  }
  let report;
  try {
    report = evaluatePreChecks(await gatherPreSnapshot(loaded.kubeConfig, options.namespace));
  } catch (error) {
    process.stderr.write(`error: the Kubernetes API did not answer: ${apiErrorSummary(error)}\n`);
    return 1;
  }
  process.stdout.write(
    options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report),
  );
  return report.ok ? 0 : 1;
}

interface CheckCommandOptions {
  context?: string;
  wait: number;
  pre?: boolean;
  output: 'text' | 'json';
  namespace: string;
  service: string;
  webhookConfiguration: string;
  secret: string;
  configMap: string;
  config?: string;
  kubeconfig?: string;
  timeout: number;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface CommandOptions {
  port: number;
  host: string;
  monitoringPort: number;
  monitoring: boolean;
  tlsCert: string;
  tlsKey: string;
  config: string;
  proxyImage?: string;
  initImage?: string;
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

function imageReference(value: string): string {
  try {
    return parseImageReference(value);
  } catch (error) {
    if (!(error instanceof ValueProblem)) throw error;
    throw new InvalidArgumentError(`${error.reason}; expected ${error.accepted}`);
  }
}

/** `30s`, `5m`, `1m30s`, `1h`, or milliseconds as a bare number. */
function duration(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (!match || value === '') throw new InvalidArgumentError('not a duration such as 30s, 5m or 1m30s');
  const [, hours = '0', minutes = '0', seconds = '0'] = match;
  return ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
}

function nonNegative(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError('not a whole number of milliseconds');
  return parsed;
}

await program.parseAsync();
