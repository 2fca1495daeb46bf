import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A long-running process that the lab started. Its stdout and stderr lines are kept, so a test can wait for a
 * line and an error can show what the process said; its stdin takes requests.
 */
export class LabProcess {
  readonly output: string[] = [];
  private exitStatus: string | undefined;
  private readonly lineListeners = new Set<(line: string) => void>();
  private readonly exitListeners = new Set<() => void>();

  constructor(
    readonly description: string,
    private readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.output.push(line);
        for (const listener of this.lineListeners) listener(line);
      });
    }
    const onEnd = (status: string) => {
      this.exitStatus ??= status;
      for (const listener of this.exitListeners) listener();
    };
    child.on('error', (error) => onEnd(`failed to start: ${error.message}`));
    child.on('exit', (code, signal) => onEnd(signal ? `killed by ${signal}` : `exited with code ${code}`));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** Resolves with the first line (already printed or still to come) that matches; rejects if the process ends first. */
  waitForLine(pattern: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.lineListeners.delete(onLine);
        this.exitListeners.delete(onExit);
      };
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        cleanup();
        resolve(line);
      };
      const onExit = () => {
        cleanup();
        reject(this.failure(`ended before printing a line matching ${pattern}`));
      };
      const earlier = this.output.find((line) => pattern.test(line));
      if (earlier !== undefined) return resolve(earlier);
      if (!this.running) return onExit();
      this.lineListeners.add(onLine);
      this.exitListeners.add(onExit);
    });
  }

  failure(what: string): Error {
    const status = this.exitStatus ? ` (${this.exitStatus})` : '';
    return new Error(`${this.description} ${what}${status}; its output:\n${this.output.join('\n')}`);
  }

  /** Writes one line to the process's standard input. */
  writeLine(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Kills the process and everything it started: each lab process leads its own process group. */
  kill(): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // Already gone between the check and the kill.
    }
  }
}
