/**
 * How mesh-iptables runs programs: through execa, with argument arrays, never a shell. execa is loaded on first
 * use, so a dry run, which runs nothing, does not pay for loading it.
 */
import type * as Execa from 'execa';

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

let execaModule: Promise<typeof Execa> | undefined;

/**
 * The real runner. A program that cannot be started, or is killed by a signal, gives exit code 127 and the reason
 * on stderr.
 */
export const runCommand: CommandRunner = async (file, args, options = {}) => {
  const { execa } = await (execaModule ??= import('execa'));
  const result = await execa(file, args, {
    reject: false,
    stripFinalNewline: false,
    input: options.input ?? '',
  });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  if (result.exitCode === undefined) {
    const reason = result.shortMessage ?? `${describeCommand(file, args)} could not be started`;
    return { exitCode: 127, stdout, stderr: stderr + reason };
  }
  return { exitCode: result.exitCode, stdout, stderr };
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
