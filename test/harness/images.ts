/**
 * The local node's container images, for the harness and `npm start`.
 *
 * Contract (a wrapper of scripts/build-images.sh, which holds the details):
 *   ensureImages()  builds what is stale (minutes when cold: debootstrap, npm ci in the Dockerfile; seconds when
 *                   warm) and resolves with one entry per image: `name`, the full reference inside the archive
 *                   (e.g. localhost/mesh-injector/webhook:dev), and `archive`, the absolute path of an OCI archive
 *                   that `ctr -n k8s.io images import` takes. Progress goes to this process's stderr. It rejects with
 *                   the script's last lines when a build fails. Needs root, buildah, debootstrap and gcc
 *                   (scripts/install-prerequisites.sh); concurrent calls, also from other processes, build once.
 *   imageKeys()     each image's cache key, without building (no root needed).
 *   IMAGES          the names, for pod specs and the images the webhook injects (test/e2e/overlay's images:).
 *   buildah(args)   runs buildah on the script's own image storage (never the machine's default storage).
 *   mountImage(archive)  the root filesystem of an archive's image, for tests that run its programs.
 */
import { execa } from 'execa';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { repoPath } from './repo.js';

export const BUILD_IMAGES_SCRIPT = 'scripts/build-images.sh';

/** The images a local node runs; scripts/build-images.sh builds and exports exactly these, in this order. */
export const IMAGES = {
  webhook: 'localhost/mesh-injector/webhook:dev',
  init: 'localhost/mesh-injector/mesh-iptables:dev',
  proxy: 'localhost/mesh-standin-proxy:dev',
  demo: 'localhost/mesh-demo:dev',
  pause: 'localhost/mesh-pause:dev',
} as const;

export interface ImageArchive {
  name: string;
  archive: string;
}

export async function ensureImages(options: { cancelSignal?: AbortSignal } = {}): Promise<ImageArchive[]> {
  const { stdout } = await execa('bash', [repoPath(BUILD_IMAGES_SCRIPT)], {
    stdin: 'ignore',
    stderr: 'inherit',
    // SIGTERM lets the script stop its build and remove its working containers and temp dir.
    killSignal: 'SIGTERM',
    forceKillAfterDelay: 30_000,
    ...(options.cancelSignal ? { cancelSignal: options.cancelSignal } : {}),
  });
  const images = parseTable(stdout).map(([name, archive]) => ({ name, archive }));
  for (const { name, archive } of images) {
    if (!isAbsolute(archive))
      throw new Error(`${BUILD_IMAGES_SCRIPT} printed a relative archive path for ${name}`);
  }
  const expected = Object.values(IMAGES);
  const names = images.map((image) => image.name);
  if (JSON.stringify(names) !== JSON.stringify(expected)) {
    throw new Error(`${BUILD_IMAGES_SCRIPT} printed ${names.join(', ')}; expected ${expected.join(', ')}`);
  }
  return images;
}

/** NAME -> cache key for every image the script builds, base images included. Builds nothing. */
export async function imageKeys(script = repoPath(BUILD_IMAGES_SCRIPT)): Promise<Map<string, string>> {
  const { stdout } = await execa('bash', [script, '--keys'], { stdin: 'ignore' });
  return new Map(parseTable(stdout));
}

/** Lines of two tab-separated fields. */
export function parseTable(stdout: string): [string, string][] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split('\t');
      if (fields.length !== 2 || fields.some((field) => field === '')) {
        throw new Error(`${BUILD_IMAGES_SCRIPT}: unexpected output line ${JSON.stringify(line)}`);
      }
      return fields as [string, string];
    });
}

/** The script's images folder; the two must agree (`||`, as the script's `:-`). */
export function imagesCacheDir(): string {
  const cacheRoot =
    process.env.MESH_INJECTOR_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mesh-injector');
  return join(cacheRoot, 'images');
}

/** buildah on the images' storage, as build-images.sh runs it; resolves with its trimmed stdout. */
export async function buildah(args: readonly string[]): Promise<string> {
  const dir = imagesCacheDir();
  const storage = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  const { stdout } = await execa('buildah', [...storage, ...args], { stdin: 'ignore' });
  return stdout.trim();
}

/** A working container of an image, mounted: its root filesystem at `root` until remove(). */
export interface MountedImage {
  root: string;
  remove(): Promise<void>;
}

/**
 * Mounts the image of an archive that ensureImages() returned. The storage's tag of the same name may hold another
 * checkout's build by now, so the image is found by its ID (the archive's config digest), or else read from the
 * archive itself.
 */
export async function mountImage(archive: string): Promise<MountedImage> {
  const id = await archiveImageId(archive);
  const container = await buildah(['from', '--pull=never', '--quiet', id]).catch(() =>
    buildah(['from', '--quiet', `oci-archive:${archive}`]),
  );
  try {
    const root = await buildah(['mount', container]);
    return { root, remove: async () => void (await buildah(['rm', container])) };
  } catch (error) {
    await buildah(['rm', container]);
    throw error;
  }
}

/** The image ID (config digest, hex) of an OCI archive's one image. */
async function archiveImageId(archive: string): Promise<string> {
  const read = async (entry: string) =>
    JSON.parse((await execa('tar', ['-xOf', archive, entry], { stdin: 'ignore' })).stdout) as unknown;
  const index = (await read('index.json')) as { manifests: { digest: string }[] };
  const manifestDigest = index.manifests[0]?.digest;
  if (!manifestDigest) throw new Error(`${archive}: index.json names no manifest`);
  const manifest = (await read(`blobs/${manifestDigest.replace(':', '/')}`)) as {
    config: { digest: string };
  };
  return manifest.config.digest.replace(/^sha256:/, '');
}
