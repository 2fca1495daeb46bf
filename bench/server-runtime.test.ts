import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../test/harness/repo.js';
import { imagePreload, libraryPath, serverRuntime } from './server-runtime.js';

const LDCONFIG = `1234 libs found in cache \`/etc/ld.so.cache'
\tlibjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2
\tlibjemalloc.so.2 (libc6,AArch64) => /lib/aarch64-linux-gnu/libjemalloc.so.2
\tlibjemalloc.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so
`;

describe("the bench's server runtime", () => {
  it("reads the library the webhook stage preloads from the repository's Dockerfile", () => {
    expect(imagePreload(readFileSync(repoPath('Dockerfile'), 'utf8'))).toBe(
      '/usr/local/lib/libjemalloc.so.2',
    );
  });

  it('finds no preload in a stage without one, and refuses a stage that does not exist', () => {
    const dockerfile = 'FROM debian AS webhook\nENV A=1\nFROM debian AS other\nENV LD_PRELOAD=/x.so\n';
    expect(imagePreload(dockerfile)).toBeUndefined();
    expect(imagePreload(dockerfile, 'other')).toBe('/x.so');
    expect(() => imagePreload(dockerfile, 'missing')).toThrow(/no stage missing/);
  });

  it('refuses an ENV it would misread (quoted, or with a variable) rather than guess the library', () => {
    expect(() => imagePreload('FROM debian AS webhook\nENV LD_PRELOAD="/x.so"\n')).toThrow(/line 2/);
    expect(() => imagePreload('FROM debian AS webhook\nENV LD_PRELOAD=$LIB\n')).toThrow(/KEY=value/);
  });

  it("takes the host's library of that exact file name and this host's architecture from ldconfig -p", () => {
    const expected =
      process.arch === 'arm64'
        ? '/lib/aarch64-linux-gnu/libjemalloc.so.2'
        : '/lib/x86_64-linux-gnu/libjemalloc.so.2';
    expect(libraryPath(LDCONFIG, 'libjemalloc.so.2')).toBe(expected);
    expect(libraryPath(LDCONFIG, 'libmimalloc.so.2')).toBeUndefined();
  });

  it('runs the servers on the Dockerfile’s library when the host has it, and says which', () => {
    const runtime = serverRuntime();
    const preloaded = runtime.env.LD_PRELOAD;
    if (preloaded === undefined) {
      expect(runtime.description).toMatch(/which this host lacks/);
      return;
    }
    expect(posix.basename(preloaded)).toBe('libjemalloc.so.2');
    expect(existsSync(preloaded)).toBe(true);
    expect(runtime.description).toContain(preloaded);
  });
});
