/**
 * The image cache keys of scripts/build-images.sh: an image is rebuilt exactly when something it is made from
 * changes. Runs the script's `--keys` and `--context` modes, which build nothing and need no root, on a small copy
 * of the repository whose files the tests edit.
 */
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIgnored } from './harness/dockerfile.js';
import { BUILD_IMAGES_SCRIPT, IMAGES, imageKeys } from './harness/images.js';
import { REPO_ROOT, repoPath } from './harness/repo.js';

const BASES = {
  debian: 'docker.io/library/debian:bookworm-slim',
  node: 'docker.io/library/node:24-bookworm-slim',
  distroless: 'gcr.io/distroless/nodejs24-debian12:nonroot',
} as const;

const ALL = [...Object.values(BASES), ...Object.values(IMAGES)];
const PROJECT = [IMAGES.webhook, IMAGES.init];

let fixture: string;
let script: string;

function write(path: string, text: string): void {
  mkdirSync(dirname(join(fixture, path)), { recursive: true });
  writeFileSync(join(fixture, path), text);
}

/** The images whose key differs after `change`, which is undone afterwards by restoring the fixture's files. */
async function changedBy(change: () => void): Promise<string[]> {
  const saved = snapshot();
  const before = await imageKeys(script);
  try {
    change();
    const after = await imageKeys(script);
    return ALL.filter((name) => before.get(name) !== after.get(name));
  } finally {
    restore(saved);
  }
}

function snapshot(): string {
  const copy = mkdtempSync(join(tmpdir(), 'image-keys-saved-'));
  cpSync(fixture, copy, { recursive: true });
  return copy;
}

function restore(saved: string): void {
  rmSync(fixture, { recursive: true, force: true });
  cpSync(saved, fixture, { recursive: true });
  rmSync(saved, { recursive: true, force: true });
}

beforeAll(() => {
  fixture = mkdtempSync(join(tmpdir(), 'image-keys-'));
  for (const path of [
    'Dockerfile',
    '.dockerignore',
    'package.json',
    'package-lock.json',
    BUILD_IMAGES_SCRIPT,
  ]) {
    mkdirSync(dirname(join(fixture, path)), { recursive: true });
    cpSync(repoPath(path), join(fixture, path));
  }
  cpSync(repoPath('test/images'), join(fixture, 'test/images'), { recursive: true });
  write('webhook/server.ts', 'export const port = 9443;\n');
  write('webhook/server.test.ts', "it('serves', () => {});\n");
  write('init/main.ts', 'export {};\n');
  write('README.md', '# readme\n');
  script = join(fixture, BUILD_IMAGES_SCRIPT);
});

afterAll(() => {
  rmSync(fixture, { recursive: true, force: true });
});

// Each key computation forks a few dozen processes; on a loaded 2-core machine a test takes tens of seconds.
describe('image cache keys', { timeout: 180_000 }, () => {
  it('names every image, base images included, with a sha256 key', async () => {
    const keys = await imageKeys(script);
    expect([...keys.keys()]).toEqual(ALL);
    for (const key of keys.values()) expect(key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('are the same for the same inputs', async () => {
    expect(await changedBy(() => {})).toEqual([]);
  });

  it('change for both project images when a file of the build context changes', async () => {
    expect(await changedBy(() => appendFileSync(join(fixture, 'webhook/server.ts'), '// edit\n'))).toEqual(
      PROJECT,
    );
  });

  it('change when a file is added to the build context, or its mode changes', async () => {
    expect(await changedBy(() => write('common/new.ts', 'export {};\n'))).toEqual(PROJECT);
    expect(await changedBy(() => chmodSync(join(fixture, 'init/main.ts'), 0o755))).toEqual(PROJECT);
  });

  it('do not change for files .dockerignore keeps out of the context (tests, docs)', async () => {
    expect(
      await changedBy(() => {
        appendFileSync(join(fixture, 'webhook/server.test.ts'), '// edit\n');
        appendFileSync(join(fixture, 'README.md'), 'more\n');
        write('docs/new.md', 'new\n');
      }),
    ).toEqual([]);
  });

  it('change when the Dockerfile, .dockerignore or package-lock.json changes', async () => {
    expect(await changedBy(() => appendFileSync(join(fixture, 'Dockerfile'), '# edit\n'))).toEqual(PROJECT);
    expect(await changedBy(() => appendFileSync(join(fixture, '.dockerignore'), '# edit\n'))).toEqual(
      PROJECT,
    );
    expect(await changedBy(() => appendFileSync(join(fixture, 'package-lock.json'), '\n'))).toEqual(PROJECT);
  });

  it('change for an image of test/images when its files change, and for that image only', async () => {
    const proxyConfig = join(fixture, 'test/images/standin-proxy/haproxy.cfg');
    expect(await changedBy(() => appendFileSync(proxyConfig, '# edit\n'))).toEqual([IMAGES.proxy]);
    const pause = join(fixture, 'test/images/pause/pause.c');
    expect(await changedBy(() => appendFileSync(pause, '/* edit */\n'))).toEqual([IMAGES.pause]);
  });

  it('change for an image and everything built from it when its pinned download changes', async () => {
    const pinNode = () => {
      const text = readFileSync(script, 'utf8');
      const edited = text.replace(/^node_version=.*$/m, 'node_version=24.0.0');
      expect(edited).not.toBe(text);
      writeFileSync(script, edited);
    };
    // node: the distroless stand-in copies its binary; the Dockerfile builds FROM both. The stand-in proxy, demo and
    // pause images do not use Node.
    expect(await changedBy(pinNode)).toEqual([BASES.node, BASES.distroless, ...PROJECT]);
  });

  it('change for everything built on Debian when the Debian base changes', async () => {
    const editDebian = () => {
      const text = readFileSync(script, 'utf8');
      writeFileSync(script, text.replace(/^debian_mirror=.*$/m, 'debian_mirror=http://example.org/debian'));
    };
    expect(await changedBy(editDebian)).toEqual(ALL.filter((name) => name !== IMAGES.pause));
  });
});

describe('the build context the keys hash', () => {
  /** Every file of the repository outside node_modules, dist and .git, relative and sorted. */
  function repositoryFiles(dir = REPO_ROOT): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      const relativePath = relative(REPO_ROOT, path);
      if (['node_modules', 'dist', '.git'].includes(relativePath)) return [];
      return entry.isDirectory() ? repositoryFiles(path) : [relativePath];
    });
  }

  it("is the repository's files that .dockerignore lets in, as test/harness/dockerfile.ts reads it", () => {
    const dockerignore = readFileSync(repoPath('.dockerignore'), 'utf8');
    const expected = repositoryFiles()
      .filter((path) => !isIgnored(path, dockerignore))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const listed = execFileSync('bash', [repoPath(BUILD_IMAGES_SCRIPT), '--context'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line !== '');
    expect(listed).toEqual(expected);
    expect(listed).toContain('package-lock.json');
    expect(listed.some((path) => path.endsWith('.test.ts'))).toBe(false);
  });
});
