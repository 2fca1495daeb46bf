import { spawn } from 'node:child_process';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's standard input. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with a non-zero exit code instead of rejecting. */
  allowFailure?: boolean;
  /** The working directory; this process's when not given. */
  cwd?: string;
}

export function describeCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word}'`)).join(' ');
}

/** Runs a command to completion and collects its output. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: 'pipe',
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const exitCode = code ?? 128;
      if (exitCode !== 0 && !options.allowFailure) {
        const how = signal ? `signal ${signal}` : `exit code ${exitCode}`;
        reject(new Error(`${describeCommand(command, args)} failed with ${how}:\n${stderr}${stdout}`));
      } else {
        resolve({ exitCode, stdout, stderr });
      }
    });
    // A command that exits without reading its input closes the pipe; its exit code already says what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
