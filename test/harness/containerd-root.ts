/**
 * The node's containerd root (content store, unpacked image snapshots, the CRI plugin's sandbox files), kept between
 * clusters in ~/.cache/mesh-injector/containerd so that a second start finds the images unpacked: importing the same
 * archive again then only checks what is already there, instead of decompressing and unpacking every layer.
 *
 * One root serves one cluster at a time: a root is taken with a lock file (created exclusively, holding the pid) and
 * given back on stop. A lock whose process is gone is taken over. When every root is in use, the cluster gets a
 * root of its own under its temporary directory, as before. The cluster removes every container at start and at
 * stop, so a root holds images only.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CONTAINERD_ROOTS_DIR = join(homedir(), '.cache', 'mesh-injector', 'containerd');
/** Two clusters at once (e.g. `npm start` beside a test) each keep their images; a third gets a temporary root. */
const ROOT_SLOTS = 2;

export interface ContainerdRoot {
  path: string;
  /** Whether it is a cached root (kept after stop) rather than one under the cluster's temporary directory. */
  cached: boolean;
  release(): Promise<void>;
}

export async function takeContainerdRoot(
  fallback: string,
  rootsDir = CONTAINERD_ROOTS_DIR,
  slots = ROOT_SLOTS,
): Promise<ContainerdRoot> {
  await mkdir(rootsDir, { recursive: true, mode: 0o700 });
  for (let slot = 0; slot < slots; slot++) {
    const lock = join(rootsDir, `root-${slot}.lock`);
    if (!(await takeLock(lock))) continue;
    return {
      path: join(rootsDir, `root-${slot}`),
      cached: true,
      release: () => rm(lock, { force: true }),
    };
  }
  return { path: fallback, cached: false, release: async () => {} };
}

async function takeLock(lock: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return false;
    // The holder is gone (killed before its stop ran): take the lock over.
    await rm(lock, { force: true });
  }
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
