/**
 * A child process whose output is kept (the last lines, for error messages) and which is killed when this process
 * exits, also by SIGKILL (the kernel's parent-death signal). Shared by the loopback control plane and the node
 * cluster; the node's processes run inside its network namespace through `nsenter --net` (not `ip netns exec`,
 * which mounts a fresh /sys and hides the cgroup hierarchy from the kubelet).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { hasCommand } from './requirements.js';

const STOP_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 40;
const OUTPUT_KEPT_CHARS = 64 * 1024;

export interface SupervisedProcessOptions {
  /** A network namespace file (e.g. /var/run/netns/NAME) to run the binary in. */
  netns?: string;
  /**
   * Its own process group: a Ctrl-C in the terminal then reaches only this process, whose handler stops the
   * children in order, instead of every child at once.
   */
  detached?: boolean;
}

export class SupervisedProcess {
  readonly pid: number;
  readonly #child: ChildProcess;
  #exitReason: string | undefined;
  readonly #exited: Promise<void>;
  #output = '';

  private constructor(
    readonly name: string,
    child: ChildProcess,
  ) {
    this.#child = child;
    if (child.pid === undefined) throw new Error(`${name} has no pid`);
    this.pid = child.pid;
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-OUTPUT_KEPT_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.#exitReason = signal ? `signal ${signal}` : `exit code ${code}`;
        resolve();
      }),
    );
    killOnExit(child);
  }

  static async start(
    name: string,
    binary: string,
    args: string[],
    options: SupervisedProcessOptions = {},
  ): Promise<SupervisedProcess> {
    const inNamespace = options.netns
      ? { command: 'nsenter', commandArgs: [`--net=${options.netns}`, '--', binary, ...args] }
      : { command: binary, commandArgs: args };
    const { command, commandArgs } = withParentDeathSignal(inNamespace.command, inNamespace.commandArgs);
    const child = spawn(command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    });
    try {
      await once(child, 'spawn');
    } catch (error) {
      throw new Error(`cannot start ${name} (${binary}): ${(error as Error).message}`, { cause: error });
    }
    return new SupervisedProcess(name, child);
  }

  /** How the process ended, e.g. `exit code 1` or `signal SIGKILL`; undefined while it runs. */
  get exitReason(): string | undefined {
    return this.#exitReason;
  }

  /** The output kept so far (the last 64 KiB). */
  get output(): string {
    return this.#output;
  }

  describeLogTail(): string {
    const lines = this.#output.trimEnd().split('\n').slice(-LOG_TAIL_LINES);
    return `Last ${lines.length} lines of its output:\n${lines.join('\n')}`;
  }

  /** SIGTERM, then SIGKILL if it has not exited after a grace period; resolves once it has exited. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (this.#exitReason !== undefined) return;
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(killer);
  }
}

/**
 * setpriv makes the kernel SIGKILL the child when this process dies, even by SIGKILL, which no 'exit' handler sees.
 * It then execs the binary (nsenter execs too), so the pid stays the binary's.
 */
function withParentDeathSignal(binary: string, args: string[]): { command: string; commandArgs: string[] } {
  return hasCommand('setpriv')
    ? { command: 'setpriv', commandArgs: ['--pdeathsig', 'KILL', '--', binary, ...args] }
    : { command: binary, commandArgs: args };
}

const liveChildren = new Set<ChildProcess>();

function killOnExit(child: ChildProcess): void {
  if (liveChildren.size === 0) process.once('exit', killLiveChildren);
  liveChildren.add(child);
  child.once('exit', () => {
    liveChildren.delete(child);
    if (liveChildren.size === 0) process.off('exit', killLiveChildren);
  });
}

function killLiveChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}
