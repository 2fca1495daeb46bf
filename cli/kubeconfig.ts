/**
 * The kubeconfig the CLI commands use, as kubectl finds it: --kubeconfig, else KUBECONFIG, else ~/.kube/config,
 * else the in-cluster service account; --context picks a context. When there is none, it says so and how to give
 * one, instead of client-node's fallback to http://localhost:8080.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
}

export type KubeconfigResult =
  { ok: true; kubeConfig: KubeConfig; source: string } | { ok: false; reason: string };

export const NO_KUBECONFIG_HINT =
  'give one with --kubeconfig FILE or KUBECONFIG=FILE (for `npm start`, the file its `export KUBECONFIG=` line names)';

export function loadCliKubeConfig(
  options: KubeconfigOptions,
  env: NodeJS.ProcessEnv = process.env,
  home = homedir(),
): KubeconfigResult {
  const kubeConfig = new KubeConfig();
  let source: string;
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig))
        return { ok: false, reason: `kubeconfig ${options.kubeconfig} does not exist` };
      kubeConfig.loadFromFile(options.kubeconfig);
      source = options.kubeconfig;
    } else if (env.KUBECONFIG) {
      const files = env.KUBECONFIG.split(':').filter(Boolean);
      if (!files.some((file) => existsSync(file)))
        return {
          ok: false,
          reason: `KUBECONFIG=${env.KUBECONFIG} names no file that exists; ${NO_KUBECONFIG_HINT}`,
        };
      // As kubectl merges them: the first file that sets a value wins, including current-context.
      const [first, ...rest] = files.filter((f) => existsSync(f));
      kubeConfig.loadFromFile(first!);
      for (const next of rest) {
        const more = new KubeConfig();
        more.loadFromFile(next);
        kubeConfig.mergeConfig(more, true);
      }
      source = `KUBECONFIG=${env.KUBECONFIG}`;
    } else if (existsSync(join(home, '.kube', 'config'))) {
      kubeConfig.loadFromFile(join(home, '.kube', 'config'));
      source = join(home, '.kube', 'config');
    } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
      kubeConfig.loadFromCluster();
      source = 'the in-cluster service account';
    } else {
      return {
        ok: false,
        reason: `no kubeconfig: KUBECONFIG is not set and ~/.kube/config does not exist; ${NO_KUBECONFIG_HINT}`,
      };
    }
  } catch (error) {
    return {
      ok: false,
      reason: `cannot load the kubeconfig (${options.kubeconfig ?? env.KUBECONFIG ?? '~/.kube/config'}): ${(error as Error).message}`,
    };
  }
  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((context) => context.name);
      return {
        ok: false,
        reason: `context ${JSON.stringify(options.context)} is not in ${source} (it has: ${known.join(', ') || 'none'})`,
      };
    }
    kubeConfig.setCurrentContext(options.context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    return { ok: false, reason: `${source} has no current context; pick one with --context NAME` };
  }
  return { ok: true, kubeConfig, source };
}
