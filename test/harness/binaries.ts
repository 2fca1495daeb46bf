/**
 * Finds the control plane's binaries the way controller-runtime's envtest does: TEST_ASSET_<NAME> names the file,
 * else KUBEBUILDER_ASSETS names a folder holding all three, else a default place. The default for kube-apiserver is
 * the cache that scripts/build-kubernetes.sh fills; etcd and kubectl are looked up on PATH.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KUBE_APISERVER_VERSION = 'v1.20.2';

const BUILD_SCRIPT = join('scripts', 'build-kubernetes.sh');

/** Where scripts/build-kubernetes.sh caches its binary; the two must agree (`||`, as the script's `:-`). */
export function kubeApiserverCachePath(): string {
  const cacheRoot =
    process.env.MESH_INJECTOR_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mesh-injector');
  return join(cacheRoot, `kubernetes-${KUBE_APISERVER_VERSION}`, 'kube-apiserver');
}

export function findKubeApiserver(): string | undefined {
  return findBinary('kube-apiserver', 'TEST_ASSET_KUBE_APISERVER', () =>
    executableOrUndefined(kubeApiserverCachePath()),
  );
}

/** The node's binaries, built with kube-apiserver into the same cache folder (or KUBEBUILDER_ASSETS). */
export type NodeBinaryName = 'kube-controller-manager' | 'kube-scheduler' | 'kubelet' | 'kube-proxy';

export function findNodeBinary(name: NodeBinaryName): string | undefined {
  const assets = process.env.KUBEBUILDER_ASSETS;
  return executableOrUndefined(join(assets || dirname(kubeApiserverCachePath()), name));
}

export function findEtcd(): string | undefined {
  return findBinary('etcd', 'TEST_ASSET_ETCD', () => findOnPath('etcd'));
}

export function findKubectl(): string | undefined {
  return findBinary('kubectl', 'TEST_ASSET_KUBECTL', () => findOnPath('kubectl'));
}

/**
 * Returns the kube-apiserver binary's path. When there is none and `build` is set, runs
 * scripts/build-kubernetes.sh first (about 20 minutes on 2 cores), streaming its progress to stderr.
 */
export function ensureKubeApiserver(options: { build: boolean }): string {
  const found = findKubeApiserver();
  if (found !== undefined) return found;
  if (!options.build) {
    throw new Error(
      `kube-apiserver ${KUBE_APISERVER_VERSION} is not built: run \`npm run build:kubernetes\` ` +
        `or set TEST_ASSET_KUBE_APISERVER or KUBEBUILDER_ASSETS`,
    );
  }
  const output = execFileSync('bash', [findBuildScript()], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const built = join(output.trim().split('\n').at(-1) ?? '', 'kube-apiserver');
  if (!isExecutableFile(built)) {
    throw new Error(`${BUILD_SCRIPT} printed ${JSON.stringify(built)}, which is not an executable file`);
  }
  return built;
}

/** An env var that is set is obeyed even when its file is missing, so a typo shows up instead of a fallback. */
function findBinary(name: string, envVar: string, fallback: () => string | undefined): string | undefined {
  const named = process.env[envVar];
  if (named) return executableOrUndefined(named);
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) return executableOrUndefined(join(assets, name));
  return fallback();
}

function findOnPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, name))
    .find(isExecutableFile);
}

function executableOrUndefined(path: string): string | undefined {
  return isExecutableFile(path) ? path : undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Walks up from this module, which runs from test/harness/ under vitest and from dist/test/harness/ once built. */
function findBuildScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, BUILD_SCRIPT);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`cannot find ${BUILD_SCRIPT} above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}
