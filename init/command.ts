/**
 * How mesh-iptables runs programs: Node's own child_process, with argument arrays, never a shell. execa used to do
 * this; loading it and its stdio handling cost more than the iptables programs it ran (bench section 4), and a
 * runner needs only exit code, stdout, stderr and an input.
 */
import { spawn } from 'node:child_process';

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

/**
 * The real runner. Stdin gets the input (or is empty). A program that cannot be started, or is killed by a signal,
 * gives exit code 127 and the reason on stderr.
 */
export const runCommand: CommandRunner = (file, args, options = {}) =>
  new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A program that exits without reading all its input closes the pipe: not the runner's failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    let failure: Error | undefined;
    child.once('error', (error) => {
      failure = error;
    });
    child.once('close', (code, signal) => {
      const out = Buffer.concat(stdout).toString('utf8');
      const err = Buffer.concat(stderr).toString('utf8');
      if (code !== null && failure === undefined)
        return resolve({ exitCode: code, stdout: out, stderr: err });
      const reason =
        failure !== undefined
          ? `${describeCommand(file, args)} could not be started: ${failure.message}`
          : `${describeCommand(file, args)} was killed by ${signal ?? 'a signal'}`;
      resolve({ exitCode: 127, stdout: out, stderr: err + reason });
    });
  });

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
