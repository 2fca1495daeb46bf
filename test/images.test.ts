/**
 * The local node's images, built (or reused) by scripts/build-images.sh and checked as a node would use them: each
 * archive is an OCI layout that names its image; the webhook image runs `mesh-injector` as uid 65532 with no
 * shell; the init image runs `mesh-iptables`; the pause image waits for SIGTERM. Then, in the kernel lab's network
 * namespaces, two pods as injection makes them from the images alone (the stand-in profile's proxy command and
 * security context, the init image's capture rules, the demo image's server and curl): a request leaves through
 * the client's proxy (15001), arrives through the server's (15006, peer 127.0.0.6), and both proxies count it under
 * Envoy's metric names.
 */
import type { V1Container } from '@kubernetes/client-node';
import { execa } from 'execa';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONTAINER_NAMES,
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  PORTS,
  PROXY_GID,
  PROXY_UID,
} from '../common/constants.js';
import { loadConfig } from '../webhook/config.js';
import { injectPod } from '../webhook/inject.js';
import { ensureImages, IMAGES, mountImage, type ImageArchive, type MountedImage } from './harness/images.js';
import { repoPath } from './harness/repo.js';
import { hasCommand, isRoot, missingRequirements } from './harness/requirements.js';
import { createLab, labRequirements, webhookInitArgs, type Lab, type Pod } from './lab/index.js';
import type { LabProcess } from './lab/process.js';

const missing = missingRequirements(
  {
    ...labRequirements(),
    root: isRoot(),
    buildah: hasCommand('buildah'),
    debootstrap: hasCommand('debootstrap'),
    curl: hasCommand('curl'),
    containerd: hasCommand('containerd') && hasCommand('ctr'),
  },
  'images',
);

const APP_PORT = 8080;
const DEMO_USER = '1000:1000';
/** The PATH of the images' configs (Debian's default). */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface OciImage {
  /** The index's org.opencontainers.image.ref.name. */
  refName: string | undefined;
  config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; Env?: string[] };
}

function tarEntries(archive: string): string[] {
  return execFileSync('tar', ['-tf', archive], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
}

function tarJson(archive: string, entry: string): unknown {
  return JSON.parse(execFileSync('tar', ['-xOf', archive, entry], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return `blobs/${algorithm}/${hex}`;
}

/** The image of an OCI archive, read the way `ctr images import` reads it: index, manifest, config. */
function readOciArchive(archive: string): OciImage {
  const index = tarJson(archive, 'index.json') as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  expect(index.manifests).toHaveLength(1);
  const [descriptor] = index.manifests;
  const manifest = tarJson(archive, blobPath(descriptor!.digest)) as { config: { digest: string } };
  const image = tarJson(archive, blobPath(manifest.config.digest)) as { config: OciImage['config'] };
  return { refName: descriptor!.annotations?.['org.opencontainers.image.ref.name'], config: image.config };
}

/**
 * argv that runs `command` in an image's root filesystem as a container runtime would: its own /proc, /dev and a
 * tmpfs /tmp (the emptyDir the template mounts), optionally a read-only root, as `user` with no capabilities and
 * only PATH in the environment. Run inside a lab pod, `ip netns exec` gives it a mount namespace of its own, so
 * the mounts end with it.
 */
function inImage(root: string, user: string, command: readonly string[], readOnlyRoot: boolean): string[] {
  const script = [
    'set -e',
    'root=$1 user=$2 path=$3',
    'shift 3',
    'mount --bind "$root" "$root"',
    'mount -t proc proc "$root/proc"',
    'mount --rbind /dev "$root/dev"',
    'mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"',
    ...(readOnlyRoot ? ['mount -o remount,bind,ro "$root"'] : []),
    'exec chroot --userspec="$user" "$root" /usr/bin/env -i PATH="$path" "$@"',
  ].join('\n');
  return ['sh', '-c', script, 'sh', root, user, IMAGE_PATH, ...command];
}

function podExec(pod: Pod, argv: readonly string[]) {
  const [command, ...args] = argv;
  return pod.exec(command!, args, { allowFailure: true });
}

function podSpawn(pod: Pod, argv: readonly string[]): LabProcess {
  const [command, ...args] = argv;
  return pod.spawn(command!, args);
}

/** GETs a URL from inside a pod with the machine's curl (as root: loopback and the proxy's ports are not captured). */
async function podGet(pod: Pod, url: string): Promise<{ ok: boolean; body: string }> {
  const result = await pod.exec('curl', ['-sS', '--fail', '--max-time', '5', url], { allowFailure: true });
  return { ok: result.exitCode === 0, body: result.stdout };
}

/** Polls until the proxy answers its readiness probe, as the kubelet would; fails with the proxy's output. */
async function waitReady(pod: Pod, proxy: LabProcess): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (!proxy.running) throw proxy.failure('stopped before it was ready');
    const { ok, body } = await podGet(pod, `http://127.0.0.1:${PORTS.readiness}/healthz/ready`);
    if (ok) {
      expect(body.trim()).toBe('ready');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw proxy.failure('never answered its readiness probe');
}

/** One series of a Prometheus text page, by its full name with labels. */
function sample(page: string, series: string): number | undefined {
  const line = page.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const listener = (port: number) =>
  `envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_${port}"}`;

describe.skipIf(missing.length > 0)('the local images', () => {
  let images: ImageArchive[];

  beforeAll(async () => {
    images = await ensureImages();
  }, 60 * 60_000);

  describe('archives', () => {
    it('are one OCI archive per image, naming its image, in the order of IMAGES', () => {
      expect(images.map((image) => image.name)).toEqual(Object.values(IMAGES));
      for (const { name, archive } of images) {
        expect(existsSync(archive), archive).toBe(true);
        const entries = tarEntries(archive);
        expect(entries).toContain('oci-layout');
        expect(entries).toContain('index.json');
        expect(entries.some((entry) => entry.startsWith('blobs/sha256/'))).toBe(true);
        expect(readOciArchive(archive).refName).toBe(name);
      }
    });

    it(
      'are reused while their inputs are unchanged',
      async () => {
        const again = await ensureImages();
        expect(again).toEqual(images);
      },
      10 * 60_000,
    );
  });

  describe('imported into a containerd of its own, as the node imports them', () => {
    let dir: string;
    let containerd: ReturnType<typeof spawn> | undefined;

    afterAll(async () => {
      if (containerd && containerd.exitCode === null) {
        const exited = new Promise((resolve) => containerd!.once('exit', resolve));
        containerd.kill('SIGTERM');
        await exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it(
      'keeps every image under its name',
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'mesh-images-containerd-'));
        const socket = join(dir, 'containerd.sock');
        writeFileSync(
          join(dir, 'config.toml'),
          [
            'version = 2',
            `root = "${join(dir, 'root')}"`,
            `state = "${join(dir, 'state')}"`,
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            '[grpc]',
            `  address = "${socket}"`,
          ].join('\n'),
        );
        containerd = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
        const ctr = (args: string[]) => execa('ctr', ['--address', socket, '-n', 'k8s.io', ...args]);
        for (let attempt = 0; !existsSync(socket); attempt++) {
          if (attempt > 600 || containerd.exitCode !== null) throw new Error('containerd did not start');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        for (const { archive } of images) await ctr(['images', 'import', archive]);
        const { stdout } = await ctr(['images', 'ls', '-q']);
        expect(stdout.split('\n').sort()).toEqual(Object.values(IMAGES).sort());
      },
      10 * 60_000,
    );
  });

  function archiveOf(name: string): string {
    const found = images.find((image) => image.name === name);
    if (!found) throw new Error(`no archive for ${name}`);
    return found.archive;
  }

  describe('the webhook image', () => {
    let mounted: MountedImage;
    beforeAll(async () => {
      mounted = await mountImage(archiveOf(IMAGES.webhook));
    }, 10 * 60_000);
    afterAll(() => mounted?.remove());

    it("runs the package's mesh-injector bin as the numeric non-root user 65532, as the Deployment says", () => {
      const { config } = readOciArchive(archiveOf(IMAGES.webhook));
      expect(config.User).toBe('65532:65532');
      expect(config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/dist/cli/main.js']);
      expect(config.Cmd).toEqual(['serve']);
    });

    it('has no shell, and its Node runs the CLI as that user', async () => {
      expect(existsSync(`${mounted.root}/bin/sh`)).toBe(false);
      const result = await execa(
        'chroot',
        ['--userspec=65532:65532', mounted.root, '/nodejs/bin/node', '/app/dist/cli/main.js', '--help'],
        { env: { PATH: IMAGE_PATH }, extendEnv: false, reject: false },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toContain('serve');
    });

    it('runs its Node on the jemalloc it preloads (ld.so skips a preload it cannot load, with only a warning)', async () => {
      const { config } = readOciArchive(archiveOf(IMAGES.webhook));
      const imageEnv = Object.fromEntries(
        (config.Env ?? []).map((entry) => [
          entry.slice(0, entry.indexOf('=')),
          entry.slice(entry.indexOf('=') + 1),
        ]),
      );
      expect(imageEnv.LD_PRELOAD).toMatch(/\/libjemalloc\.so\.2$/);
      // The host's chroot must not see the image's LD_PRELOAD: a Node inside the image starts another with it, as
      // a container runtime would, and prints what that one loaded.
      const spawnWithImageEnv = [
        "const { spawnSync } = require('node:child_process');",
        'const env = JSON.parse(process.argv[1]);',
        "const child = spawnSync(process.execPath, ['-p', process.argv[2]], { env, encoding: 'utf8' });",
        'process.stdout.write(child.stdout); process.stderr.write(child.stderr); process.exitCode = child.status ?? 1;',
      ].join('\n');
      const result = await execa(
        'chroot',
        [
          '--userspec=65532:65532',
          mounted.root,
          '/nodejs/bin/node',
          '-e',
          spawnWithImageEnv,
          JSON.stringify(imageEnv),
          "process.report.getReport().sharedObjects.join('\\n')",
        ],
        { env: { PATH: IMAGE_PATH }, extendEnv: false, reject: false },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout.split('\n')).toContain(imageEnv.LD_PRELOAD);
    });
  });

  describe('the init image', () => {
    it(
      'runs mesh-iptables --help',
      async () => {
        const mounted = await mountImage(archiveOf(IMAGES.init));
        try {
          const result = await execa('chroot', [mounted.root, 'mesh-iptables', '--help'], {
            env: { PATH: IMAGE_PATH },
            extendEnv: false,
            reject: false,
          });
          expect(result.exitCode, result.stderr).toBe(0);
          expect(result.stdout).toMatch(/mesh-iptables/);
        } finally {
          await mounted.remove();
        }
      },
      10 * 60_000,
    );
  });

  describe('the pause image', () => {
    it('waits until SIGTERM, then exits 0', async () => {
      const { config } = readOciArchive(archiveOf(IMAGES.pause));
      expect(config.Entrypoint).toEqual(['/pause']);
      const mounted = await mountImage(archiveOf(IMAGES.pause));
      try {
        const child = spawn('chroot', [mounted.root, '/pause'], { stdio: 'ignore' });
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(child.exitCode).toBeNull();
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        await mounted.remove();
      }
    });
  });

  describe('in network namespaces, as injected pods', () => {
    let lab: Lab;
    let client: Pod;
    let server: Pod;
    const mounted: MountedImage[] = [];
    let proxies: LabProcess[];

    /** The stand-in profile's istio-proxy container, as the webhook injects it. */
    async function standinProxy(): Promise<V1Container> {
      const config = await loadConfig(repoPath('manifests', 'profiles', 'standin'));
      const result = injectPod(
        {
          metadata: { name: 'p', namespace: 'demo' },
          spec: { containers: [{ name: 'app', image: IMAGES.demo }] },
        },
        'demo',
        { ...config, nativeSidecars: false },
      );
      if (result.outcome !== 'injected') throw new Error(result.message);
      const proxy = result.pod.spec?.containers?.find(
        (container) => container.name === CONTAINER_NAMES.proxy,
      );
      if (!proxy) throw new Error('no proxy container');
      return proxy;
    }

    beforeAll(async () => {
      const [initImage, proxyImage, demoImage] = await Promise.all(
        [IMAGES.init, IMAGES.proxy, IMAGES.demo].map((name) => mountImage(archiveOf(name))),
      );
      mounted.push(initImage!, proxyImage!, demoImage!);
      lab = await createLab();
      [client, server] = await Promise.all([lab.addPod('client'), lab.addPod('server')]);

      // istio-init: the webhook's arguments for the shipped configuration, run from the init image.
      const initArgs = await webhookInitArgs();
      for (const pod of [client, server]) {
        const init = await podExec(
          pod,
          inImage(initImage!.root, '0:0', ['mesh-iptables', ...initArgs], false),
        );
        expect(init.exitCode, `istio-init failed:\n${init.stderr}${init.stdout}`).toBe(0);
      }

      // istio-proxy: the stand-in profile's command and arguments, user and read-only root, from the proxy image.
      const proxy = await standinProxy();
      const context = proxy.securityContext;
      expect(context?.runAsUser).toBe(PROXY_UID);
      expect(context?.readOnlyRootFilesystem).toBe(true);
      const proxyArgv = [...(proxy.command ?? []), ...(proxy.args ?? [])];
      const user = `${context?.runAsUser}:${context?.runAsGroup}`;
      proxies = [client, server].map((pod) =>
        podSpawn(pod, inImage(proxyImage!.root, user, proxyArgv, true)),
      );
      await Promise.all([client, server].map((pod, index) => waitReady(pod, proxies[index]!)));

      const echo = podSpawn(
        server,
        inImage(demoImage!.root, DEMO_USER, ['mesh-demo-echo', String(APP_PORT)], true),
      );
      await echo.waitForLine(/^listening on/);
    }, 10 * 60_000);

    afterAll(async () => {
      lab?.destroy();
      for (const image of mounted) await image.remove();
    });

    it('the proxy runs as uid 1337 with no capabilities', () => {
      // `ip netns exec`, sh, chroot, env and the entry point all exec: the process the lab started is HAProxy.
      const pid = proxies[1]!.pid;
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('haproxy');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${PROXY_UID}\\s`, 'm'));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${PROXY_GID}\\s`, 'm'));
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapPrm:\s+0+$/m);
      // Its root filesystem is read-only (mountinfo's fields: ID, parent, device, root, mount point, options, ...).
      const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n');
      const root = mounts.map((line) => line.split(' ')).filter((fields) => fields[4] === '/');
      expect(root.at(-1)?.[5]?.split(',')).toContain('ro');
    });

    it("the demo app's curl reaches the server through both proxies, and the server sees 127.0.0.6", async () => {
      const demo = mounted[2]!;
      const request = await podExec(
        client,
        inImage(
          demo.root,
          DEMO_USER,
          ['curl', '-sS', '--max-time', '10', `http://${server.ipv4}:${APP_PORT}/`],
          true,
        ),
      );
      expect(request.exitCode, request.stderr).toBe(0);
      expect(request.stdout).toBe(`peer=${INBOUND_PASSTHROUGH_SOURCE_IPV4}\n`);

      const clientStats = await podGet(client, `http://127.0.0.1:${PORTS.proxyStats}/stats/prometheus`);
      const serverStats = await podGet(server, `http://127.0.0.1:${PORTS.proxyStats}/stats/prometheus`);
      expect(clientStats.ok && serverStats.ok).toBe(true);
      expect(sample(clientStats.body, listener(PORTS.outboundCapture))).toBe(1);
      expect(sample(clientStats.body, listener(PORTS.inboundCapture))).toBe(0);
      expect(sample(serverStats.body, listener(PORTS.inboundCapture))).toBe(1);
      // The server proxy's own connection to the app is not captured again.
      expect(sample(serverStats.body, listener(PORTS.outboundCapture))).toBe(0);
      expect(clientStats.body).toContain('# TYPE envoy_listener_downstream_cx_total counter');
    });

    it('the demo echo answers a direct caller with its address', async () => {
      const { ok, body } = await podGet(server, `http://127.0.0.1:${APP_PORT}/`);
      expect(ok).toBe(true);
      expect(body).toBe('peer=127.0.0.1\n');
    });

    it('the proxy answers other paths with 404', async () => {
      const { ok } = await podGet(server, `http://127.0.0.1:${PORTS.proxyStats}/other`);
      expect(ok).toBe(false);
    });
  });
});
