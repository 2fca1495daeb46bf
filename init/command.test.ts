import { describe, expect, it } from 'vitest';
import {
  oneXtablesLockHolderAtATime,
  runCommand,
  type CommandResult,
  type CommandRunner,
} from './command.js';

describe('runCommand', () => {
  it('runs a program with an argument array and its input on stdin, without a shell', async () => {
    const script = 'process.stdout.write(process.argv[1] + ":"); process.stdin.pipe(process.stdout)';
    const result = await runCommand('node', ['-e', script, '$(echo not a shell) *'], { input: 'rules\n' });
    expect(result).toEqual({ exitCode: 0, stdout: '$(echo not a shell) *:rules\n', stderr: '' });
  });

  it('reports a failing or missing program as a result, not an exception', async () => {
    expect(await runCommand('node', ['-e', 'console.error("no"); process.exit(3)'])).toEqual({
      exitCode: 3,
      stdout: '',
      stderr: 'no\n',
    });
    const missing = await runCommand('mi-apply-no-such-program', []);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toContain('mi-apply-no-such-program');
  });

  it('reports a program killed by a signal as exit 127, naming the signal', async () => {
    const killed = await runCommand('node', ['-e', 'process.kill(process.pid, "SIGKILL")']);
    expect(killed.exitCode).toBe(127);
    expect(killed.stderr).toContain('SIGKILL');
  });

  it('gives a program without input an empty stdin, so one that reads it does not wait', async () => {
    const result = await runCommand('node', ['-e', 'process.stdin.pipe(process.stdout)']);
    expect(result).toEqual({ exitCode: 0, stdout: '', stderr: '' });
  });
});

/** A runner whose commands finish only when the test says so; it records which have started. */
function controlledRunner(): { run: CommandRunner; started: string[]; finish: (file: string) => void } {
  const started: string[] = [];
  const pending = new Map<string, (result: CommandResult) => void>();
  const run: CommandRunner = (file) =>
    new Promise((resolve) => {
      started.push(file);
      pending.set(file, resolve);
    });
  const finish = (file: string) => pending.get(file)?.({ exitCode: 0, stdout: '', stderr: '' });
  return { run, started, finish };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('oneXtablesLockHolderAtATime', () => {
  it('runs commands that may take the xtables lock one after another, and the others at once', async () => {
    const { run, started, finish } = controlledRunner();
    const serialized = oneXtablesLockHolderAtATime(run);
    const results = [
      'iptables-legacy',
      'ip6tables-legacy-restore',
      'iptables',
      'iptables-nft',
      'ip6tables-nft-restore',
      'iptables-legacy-save',
      'ip',
    ].map((file) => serialized(file, []));
    await settle();
    expect([...started].sort()).toEqual(
      ['iptables-legacy', 'iptables-nft', 'ip6tables-nft-restore', 'iptables-legacy-save', 'ip'].sort(),
    );
    finish('iptables-legacy');
    await settle();
    expect(started.slice(5)).toEqual(['ip6tables-legacy-restore']);
    finish('ip6tables-legacy-restore');
    await settle();
    expect(started.slice(6)).toEqual(['iptables']);
    for (const file of started) finish(file);
    expect(await Promise.all(results)).toHaveLength(7);
  });

  it('lets the next lock holder run after one that failed to start', async () => {
    let calls = 0;
    const failingFirst: CommandRunner = (file) =>
      calls++ === 0
        ? Promise.reject(new Error(`${file} exploded`))
        : Promise.resolve({ exitCode: 0, stdout: file, stderr: '' });
    const serialized = oneXtablesLockHolderAtATime(failingFirst);
    const first = serialized('iptables-legacy', []);
    const second = serialized('ip6tables-legacy', []);
    await expect(first).rejects.toThrow('iptables-legacy exploded');
    expect(await second).toMatchObject({ stdout: 'ip6tables-legacy' });
  });
});
