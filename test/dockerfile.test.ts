/**
 * The images, checked without a Docker engine: every path the Dockerfile copies exists (the build context after
 * .dockerignore, the build stage's /app after `npm run build`, which `npm test` runs first), the targets start the
 * package's bins, and the webhook image runs as the numeric non-root user the Deployment declares.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { CONTAINER_NAMES } from '../common/constants.js';
import {
  execForm,
  isIgnored,
  parseCopy,
  parseDockerfile,
  stageEnv,
  type Copy,
  type Dockerfile,
  type Stage,
} from './harness/dockerfile.js';
import { REPO_ROOT, repoPath } from './harness/repo.js';

interface PackageJson {
  version: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
}

/** Files the official node image provides outside the build stage's WORKDIR. */
const NODE_IMAGE_FILES = ['/usr/local/bin/node'];
/** The one file the build stage installs outside its WORKDIR (with apt-get), for the webhook image. */
const JEMALLOC = '/usr/local/lib/libjemalloc.so.2';

let dockerfile: Dockerfile;
let dockerignore: string;
let pkg: PackageJson;

beforeAll(() => {
  dockerfile = parseDockerfile(readFileSync(repoPath('Dockerfile'), 'utf8'));
  dockerignore = readFileSync(repoPath('.dockerignore'), 'utf8');
  pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as PackageJson;
});

function stage(name: string): Stage {
  const found = dockerfile.stages.filter((s) => s.name === name);
  expect(found, `stages named ${name}`).toHaveLength(1);
  return found[0] as Stage;
}

function args(target: Stage, keyword: string): string[] {
  return target.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** The last instruction of a kind in a stage (the one in effect for the image). */
function last(target: Stage, keyword: string) {
  const found = target.instructions.filter((i) => i.keyword === keyword).at(-1);
  if (!found) throw new Error(`stage ${target.name} has no ${keyword}`);
  return found;
}

/**
 * The TypeScript entry point of a bin: tsc's output mirrors the source tree (dist/cli/main.js ← cli/main.ts); a
 * bundle is built by the esbuild command in package.json's scripts that writes it (its first argument).
 */
function sourceOfBin(binPath: string): string {
  const bundler = Object.values(pkg.scripts).find((script) => script.includes(`--outfile=${binPath}`));
  if (bundler !== undefined)
    return /\besbuild\s+(\S+\.ts)\b/.exec(bundler)?.[1] ?? 'no entry in the esbuild command';
  return binPath.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

function copies(target: Stage): Copy[] {
  return target.instructions.filter((i) => i.keyword === 'COPY').map(parseCopy);
}

function workdir(target: Stage): string {
  return last(target, 'WORKDIR').args;
}

/** Relative imports of a TypeScript file, as the .ts files they name. */
function relativeImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map(
    (m) => m[1] as string,
  );
  return specifiers.map((specifier) => join(dirname(file), specifier).replace(/\.js$/, '.ts'));
}

/** Every repository file a bin's entry point reaches through relative imports. */
function importClosure(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    expect(existsSync(file), `${relative(REPO_ROOT, file)} (imported)`).toBe(true);
    queue.push(...relativeImports(file));
  }
  return [...seen].map((file) => relative(REPO_ROOT, file));
}

describe('the Dockerfile', () => {
  it('has the targets webhook and init, and a build stage', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'webhook', 'init']);
  });

  it('builds in node:24-bookworm-slim with npm ci, npm run build and npm prune --omit=dev', () => {
    const build = stage('build');
    expect(build.base).toBe('node:24-bookworm-slim');
    const commands = args(build, 'RUN')
      .join(' && ')
      .split(/\s*&&\s*/);
    const step = (prefix: string) => commands.findIndex((command) => command.startsWith(prefix));
    expect(step('npm ci')).toBeGreaterThanOrEqual(0);
    expect(step('npm run build')).toBeGreaterThan(step('npm ci'));
    expect(step('npm prune --omit=dev')).toBeGreaterThan(step('npm run build'));
  });

  it('copies from the build context only files that exist and that .dockerignore lets through', () => {
    const fromContext = dockerfile.stages.flatMap(copies).filter((copy) => copy.from === undefined);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const source of fromContext.flatMap((copy) => copy.sources)) {
      expect(existsSync(repoPath(source)), `${source} exists`).toBe(true);
      expect(isIgnored(source, dockerignore), `${source} is in the build context`).toBe(false);
    }
  });

  it('keeps local state and tests out of the build context', () => {
    for (const path of [
      'node_modules/yaml/package.json',
      'dist/cli/main.js',
      '.git/HEAD',
      'webhook/inject.test.ts',
    ]) {
      expect(isIgnored(path, dockerignore), path).toBe(true);
    }
    expect(isIgnored('webhook/inject.ts', dockerignore)).toBe(false);
  });

  it('copies into the build stage every source file the bins import, so `npm run build` emits them', () => {
    const copied = copies(stage('build')).flatMap((copy) => copy.sources);
    for (const binPath of Object.values(pkg.bin)) {
      const entry = repoPath(sourceOfBin(binPath));
      for (const file of importClosure(entry)) {
        expect(
          copied.some((source) => file === source || file.startsWith(`${source}/`)),
          `${file} is copied`,
        ).toBe(true);
      }
    }
  });

  it('copies from the build stage only what `npm run build` produced or the node image provides', () => {
    const buildDir = workdir(stage('build'));
    const fromBuild = dockerfile.stages.flatMap(copies).filter((copy) => copy.from === 'build');
    expect(fromBuild.length).toBeGreaterThan(0);
    expect(
      existsSync(repoPath('dist')),
      'dist/ exists (npm test builds it first; else run npm run build)',
    ).toBe(true);
    for (const source of fromBuild.flatMap((copy) => copy.sources)) {
      const inApp = posix.relative(buildDir, source);
      if (inApp.startsWith('..')) {
        expect(
          [...NODE_IMAGE_FILES, JEMALLOC],
          `${source} comes from the node image or the build stage's apt-get`,
        ).toContain(source);
      } else {
        expect(existsSync(repoPath(inApp)), `${source} (${inApp} after npm run build)`).toBe(true);
      }
    }
    for (const binPath of Object.values(pkg.bin)) {
      expect(existsSync(repoPath(binPath)), `${binPath} after npm run build`).toBe(true);
    }
  });

  it('starts the webhook image with the mesh-injector bin, serving by default', () => {
    const webhook = stage('webhook');
    const [node, script, ...rest] = execForm(last(webhook, 'ENTRYPOINT'));
    expect(node).toMatch(/\/node$/);
    expect(rest).toEqual([]);
    expect(posix.relative(workdir(webhook), script as string)).toBe(pkg.bin['mesh-injector']);
    expect(execForm(last(webhook, 'CMD'))).toEqual(['serve']);
  });

  it("runs the webhook's node on jemalloc, installed from Debian in the build stage", () => {
    const runs = args(stage('build'), 'RUN').join(' ');
    expect(runs).toContain('apt-get install -y --no-install-recommends libjemalloc2');
    // Debian's path has the architecture in it; the copy's does not.
    expect(runs).toContain(`cp "$(dpkg -L libjemalloc2 | grep '/libjemalloc\\.so\\.2$')" ${JEMALLOC}`);
    const webhook = stage('webhook');
    expect(copies(webhook)).toContainEqual({ from: 'build', sources: [JEMALLOC], destination: JEMALLOC });
    expect(stageEnv(webhook).get('LD_PRELOAD')).toBe(JEMALLOC);
    expect(stageEnv(stage('init')).has('LD_PRELOAD')).toBe(false);
  });

  it('starts the init image with the mesh-iptables bin, on PATH where the sidecar template calls it', () => {
    const init = stage('init');
    expect(init.base).toMatch(/^debian:bookworm-slim$/);
    expect(execForm(last(init, 'ENTRYPOINT'))).toEqual(['mesh-iptables']);
    const bin = posix.join(workdir(init), pkg.bin['mesh-iptables'] as string);
    const runs = args(init, 'RUN').join(' ');
    expect(runs).toContain(`ln -s ${bin} /usr/local/bin/mesh-iptables`);
    expect(runs).toContain(`chmod 755 ${bin}`);
    // Executed directly, so the compiled entry point needs its interpreter line.
    expect(readFileSync(repoPath(pkg.bin['mesh-iptables'] as string), 'utf8')).toMatch(
      /^#!\/usr\/bin\/env node\n/,
    );
    const template = parseYaml(readFileSync(repoPath('manifests/config/template.yaml'), 'utf8')) as {
      initContainers: { name: string; command: string[] }[];
    };
    const istioInit = template.initContainers.find((c) => c.name === CONTAINER_NAMES.init);
    expect(istioInit?.command).toEqual(['mesh-iptables']);
  });

  it('holds only node and the self-contained mesh-iptables bundle from the build, no node_modules', () => {
    const init = stage('init');
    const fromBuild = copies(init).filter((copy) => copy.from === 'build');
    expect(fromBuild.flatMap((copy) => copy.sources).sort()).toEqual(
      ['/usr/local/bin/node', posix.join(workdir(stage('build')), pkg.bin['mesh-iptables'] as string)].sort(),
    );
    expect(copies(init).filter((copy) => copy.from === undefined)).toEqual([]);
  });

  it('fills the compile cache of the init image when it is built, where node reads it at run time', () => {
    const init = stage('init');
    expect(stageEnv(init).get('NODE_COMPILE_CACHE')).toMatch(/^\/\S+$/);
    const runs = args(init, 'RUN').join(' ');
    expect(runs).toMatch(/mesh-iptables --dry-run --ipv6=false/);
    // The cache is filled after the ENV that names it, by the RUN that runs the program.
    const order = init.instructions.map((i) => i.keyword);
    expect(order.lastIndexOf('RUN')).toBeGreaterThan(order.indexOf('ENV'));
  });

  it('installs iptables (nft and legacy backends) and iproute2 in the init image, with node from the build', () => {
    const init = stage('init');
    expect(args(init, 'RUN').join(' ')).toMatch(/apt-get install -y --no-install-recommends .*\biptables\b/);
    expect(args(init, 'RUN').join(' ')).toMatch(/apt-get install [^&]*\biproute2\b/);
    expect(
      copies(init).some((copy) => copy.from === 'build' && copy.sources.includes('/usr/local/bin/node')),
    ).toBe(true);
  });

  it('runs the webhook image as a numeric non-root user, the one manifests/deployment.yaml declares', () => {
    const user = last(stage('webhook'), 'USER').args;
    const match = /^(\d+)(?::(\d+))?$/.exec(user);
    expect(match, `USER ${user} is numeric`).not.toBeNull();
    const uid = Number(match?.[1]);
    expect(uid).toBeGreaterThan(0);

    const deployment = parseAllDocuments(readFileSync(repoPath('manifests/deployment.yaml'), 'utf8'))
      .map((doc) => doc.toJS() as { kind?: string; spec?: { template: { spec: DeploymentPodSpec } } })
      .find((doc) => doc.kind === 'Deployment');
    const podSpec = deployment?.spec?.template.spec;
    expect(podSpec?.securityContext?.runAsUser).toBe(uid);
    expect(podSpec?.securityContext?.runAsNonRoot).toBe(true);
    if (match?.[2] !== undefined) expect(podSpec?.securityContext?.runAsGroup).toBe(Number(match[2]));
    // The Deployment keeps the image's ENTRYPOINT and passes the subcommand the image's CMD names.
    const container = podSpec?.containers.find((c) => c.name === 'webhook');
    expect(container?.command).toBeUndefined();
    expect(container?.args?.[0]).toBe(execForm(last(stage('webhook'), 'CMD'))[0]);
  });

  it('is what the manifests run: the webhook and mesh-iptables images at the package version', () => {
    const deployment = readFileSync(repoPath('manifests/deployment.yaml'), 'utf8');
    const values = parseYaml(readFileSync(repoPath('manifests/config/values.yaml'), 'utf8')) as {
      images: { init: string };
    };
    expect(deployment).toMatch(new RegExp(`image: \\S+/webhook:${pkg.version.replace(/\./g, '\\.')}\\n`));
    expect(values.images.init).toMatch(new RegExp(`/mesh-iptables:${pkg.version.replace(/\./g, '\\.')}$`));
  });
});

interface DeploymentPodSpec {
  securityContext?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean };
  containers: { name: string; command?: string[]; args?: string[] }[];
}
