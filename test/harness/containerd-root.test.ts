import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { takeContainerdRoot } from './containerd-root.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'containerd-roots-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the cached containerd roots', () => {
  it('gives each cluster its own root while it holds it, then a temporary one, and takes a root back on release', async () => {
    const first = await takeContainerdRoot('/tmp/fallback-1', dir, 2);
    const second = await takeContainerdRoot('/tmp/fallback-2', dir, 2);
    const third = await takeContainerdRoot('/tmp/fallback-3', dir, 2);
    expect([first.path, second.path, third.path]).toEqual([
      join(dir, 'root-0'),
      join(dir, 'root-1'),
      '/tmp/fallback-3',
    ]);
    expect([first.cached, second.cached, third.cached]).toEqual([true, true, false]);
    expect(await readFile(join(dir, 'root-0.lock'), 'utf8')).toBe(`${process.pid}\n`);

    await first.release();
    expect((await takeContainerdRoot('/tmp/fallback-4', dir, 2)).path).toBe(join(dir, 'root-0'));
  });

  it('takes over the root of a process that is gone', async () => {
    // A pid above the kernel's pid_max never runs.
    await writeFile(join(dir, 'root-0.lock'), '4194305\n');
    expect((await takeContainerdRoot('/tmp/fallback', dir, 1)).path).toBe(join(dir, 'root-0'));
  });
});
