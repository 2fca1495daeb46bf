/**
 * What `npm pack` ships: only what runs (the four programs' code and the manifests), never the tests, benchmarks or
 * development scripts, and the metadata a registry page shows. Reads `npm pack --dry-run` after `npm run build`.
 */
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, repoPath } from './harness/repo.js';

let files: string[];

beforeAll(async () => {
  const { stdout } = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: REPO_ROOT,
  });
  files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((file) => file.path);
});

describe('the npm package', () => {
  it('ships the bins, the runtime code they import and the manifests', () => {
    const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const bin of Object.values(pkg.bin)) expect(files).toContain(bin);
    expect(files).toEqual(expect.arrayContaining(['dist/webhook/server.js', 'dist/common/constants.js']));
    expect(files).toEqual(
      expect.arrayContaining(['manifests/kustomization.yaml', 'manifests/config/template.yaml']),
    );
  });

  it('ships no tests, benchmarks, development scripts or test harness', () => {
    expect(
      files.filter((file) => /^dist\/(test|bench|scripts)\//.test(file) || /\.test\./.test(file)),
    ).toEqual([]);
  });

  it('names its repository, homepage and issue tracker', () => {
    const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.repository).toMatchObject({ type: 'git', url: expect.stringMatching(/^git\+https:\/\//) });
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs).toMatchObject({ url: expect.stringMatching(/^https:\/\/.*\/issues$/) });
  });
});
