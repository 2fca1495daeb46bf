/**
 * How mesh-iptables runs programs: Node's own child_process, with argument arrays, never a shell. execa used to do
 * this; loading it and its stdio handling cost more than the iptables programs it ran (bench section 4), and a
 * runner needs only exit code, stdout, stderr and an input.
 */
import type * as ChildProcess from 'node:child_process';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; a non-zero exit is a result, not an exception. */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options?: { input?: string },
) => Promise<CommandResult>;

/** iptables-save of a busy host's tables can be megabytes; spawnSync's default cap is 1 MiB. */
const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/**
 * The real runner. Stdin gets the input (or is empty). A program that cannot be started, or is killed by a signal,
 * gives exit code 127 and the reason on stderr.
 *
 * It runs the program synchronously: mesh-iptables does nothing else meanwhile, and spawnSync sets up no streams
 * for the child's pipes, which takes milliseconds off each of the two or three programs a pod's apply runs. Node's
 * child_process is loaded on the first run, not at start: loading it (with net and stream) is about a tenth of
 * `node -e 0`, and a dry run, --help or --version never runs a program (bench section 4).
 */
export const runCommand: CommandRunner = (file, args, options = {}) => {
  const { spawnSync } = process.getBuiltinModule('node:child_process') as typeof ChildProcess;
  const result = spawnSync(file, args, {
    input: options.input ?? '',
    maxBuffer: MAX_OUTPUT_BYTES,
    encoding: 'utf8',
  });
  const stdout = result.stdout ?? '';
  const stderr = result.stderr ?? '';
  if (result.status !== null && result.error === undefined) {
    return Promise.resolve({ exitCode: result.status, stdout, stderr });
  }
  const reason =
    result.error !== undefined
      ? `${describeCommand(file, args)} could not be started: ${result.error.message}`
      : `${describeCommand(file, args)} was killed by ${result.signal ?? 'a signal'}`;
  return Promise.resolve({ exitCode: 127, stdout, stderr: stderr + reason });
};

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word}'`)).join(' ');
}

/**
 * Whether a command may take the xtables lock: legacy iptables and iptables-restore do (so may plain `iptables`,
 * whichever backend it is); `-save` and the nft binaries do not.
 */
function mayTakeXtablesLock(file: string): boolean {
  return /^ip6?tables(-legacy)?(-restore)?$/.test(file.split('/').pop() ?? '');
}

/**
 * `run` for callers that run commands concurrently: those that may take the xtables lock run one after another,
 * everything else at once. Two holders at once would make one wait, and with `--wait=N` older iptables retries
 * only once a second (without `--wait`, it fails).
 */
export function oneXtablesLockHolderAtATime(run: CommandRunner): CommandRunner {
  let previous: Promise<unknown> = Promise.resolve();
  return (file, args, options) => {
    if (!mayTakeXtablesLock(file)) return run(file, args, options);
    const result = previous.then(() => run(file, args, options));
    previous = result.catch(() => undefined);
    return result;
  };
}
