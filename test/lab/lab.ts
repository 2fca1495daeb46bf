import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandResult, RunOptions } from './command.js';
import { describeCommand, runCommand } from './command.js';
import { LabProcess } from './process.js';

/** Every namespace the lab makes is named `mi-<pid of the test process>-<lab id>-<role>`. */
const NETNS_PREFIX = 'mi-';
const BRIDGE = 'br0';
/** Pod n gets 10.89.0.n/24 and fd00:89::n/64 on its eth0; these exist only inside the lab's namespaces. */
const IPV4_SUBNET = { prefix: '10.89.0.', length: 24 };
const IPV6_SUBNET = { prefix: 'fd00:89::', length: 64 };
const FIRST_POD_HOST = 2;

/** The user a command runs as inside a pod; root when neither is given. */
export interface Identity {
  uid?: number;
  gid?: number;
}

/** A network namespace wired to the lab's bridge, standing in for a pod's network. */
export class Pod {
  constructor(
    readonly name: string,
    readonly netns: string,
    readonly ipv4: string,
    readonly ipv6: string,
    /** The lab's folder for files that the pod's processes read. */
    readonly tempDir: string,
    private readonly track: (started: LabProcess) => void,
  ) {}

  /**
   * Runs a command to completion inside the pod. Like every process of the pod, it starts in the lab's folder,
   * which any user can enter, whatever folder the tests run from (HAProxy, for one, returns to its starting folder
   * and fails when it cannot).
   */
  exec(
    command: string,
    args: readonly string[],
    options: RunOptions & Identity = {},
  ): Promise<CommandResult> {
    return runCommand('ip', this.argv(command, args, options), { cwd: this.tempDir, ...options });
  }

  /** Starts a long-running process inside the pod, in the lab's folder; the lab kills it on destroy. */
  spawn(command: string, args: readonly string[], identity: Identity = {}): LabProcess {
    const child = spawn('ip', this.argv(command, args, identity), {
      cwd: this.tempDir,
      detached: true,
      stdio: 'pipe',
    });
    const started = new LabProcess(`${describeCommand(command, args)} in pod ${this.name}`, child);
    this.track(started);
    return started;
  }

  private argv(command: string, args: readonly string[], { uid, gid }: Identity): string[] {
    const setpriv =
      uid === undefined && gid === undefined
        ? []
        : [
            'setpriv',
            ...(uid === undefined ? [] : [`--reuid=${uid}`]),
            ...(gid === undefined ? [] : [`--regid=${gid}`]),
            '--clear-groups',
            '--',
          ];
    return ['netns', 'exec', this.netns, ...setpriv, command, ...args];
  }
}

/**
 * Network namespaces joined by a bridge that lives in a namespace of its own, so nothing is created in the host's
 * network namespace. Call destroy() when done; it also runs when the test process exits.
 */
export class Lab {
  /** World-readable, because some of the lab's processes run as the proxy user. */
  private readonly tempDir: string;
  private readonly namespaces: string[] = [];
  private readonly processes: LabProcess[] = [];
  private nextHost = FIRST_POD_HOST;
  private readonly onExit = () => {
    try {
      this.destroy();
    } catch (error) {
      console.error((error as Error).message);
    }
  };

  private constructor(private readonly namePrefix: string) {
    this.tempDir = mkdtempSync(join(tmpdir(), namePrefix));
    chmodSync(this.tempDir, 0o755);
    process.on('exit', this.onExit);
  }

  static async create(): Promise<Lab> {
    removeNamespacesOfEndedProcesses();
    const lab = new Lab(`${NETNS_PREFIX}${process.pid}-${randomBytes(2).toString('hex')}-`);
    try {
      await lab.addNamespace('net');
      await lab.ip('net', ['link', 'add', BRIDGE, 'type', 'bridge', 'forward_delay', '0']);
      await lab.ip('net', ['link', 'set', BRIDGE, 'up']);
    } catch (error) {
      lab.destroy();
      throw error;
    }
    return lab;
  }

  async addPod(name: string): Promise<Pod> {
    const host = this.nextHost++;
    const netns = await this.addNamespace(name);
    const bridgePort = `veth${host}`;
    const ipv4 = `${IPV4_SUBNET.prefix}${host}`;
    const ipv6 = `${IPV6_SUBNET.prefix}${host.toString(16)}`;
    await this.ip('net', ['link', 'add', bridgePort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await this.ip('net', ['link', 'set', bridgePort, 'master', BRIDGE, 'up']);
    await this.ip(name, ['link', 'set', 'lo', 'up']);
    await this.ip(name, ['addr', 'add', `${ipv4}/${IPV4_SUBNET.length}`, 'dev', 'eth0']);
    // nodad: the address is usable at once instead of after duplicate address detection.
    await this.ip(name, ['addr', 'add', `${ipv6}/${IPV6_SUBNET.length}`, 'dev', 'eth0', 'nodad']);
    await this.ip(name, ['link', 'set', 'eth0', 'up']);
    return new Pod(name, netns, ipv4, ipv6, this.tempDir, (started) => this.processes.push(started));
  }

  /** Kills every process the lab started or that still runs in its namespaces, then deletes the namespaces. */
  destroy(): void {
    process.off('exit', this.onExit);
    for (const started of this.processes) started.kill();
    const failures = this.namespaces.splice(0).flatMap((netns) => deleteNamespace(netns));
    rmSync(this.tempDir, { recursive: true, force: true });
    if (failures.length > 0) throw new Error(`lab cleanup failed:\n${failures.join('\n')}`);
  }

  private async addNamespace(role: string): Promise<string> {
    const netns = `${this.namePrefix}${role}`;
    await runCommand('ip', ['netns', 'add', netns]);
    this.namespaces.push(netns);
    return netns;
  }

  private ip(role: string, args: readonly string[]): Promise<CommandResult> {
    return runCommand('ip', ['-n', `${this.namePrefix}${role}`, ...args]);
  }
}

export function createLab(): Promise<Lab> {
  return Lab.create();
}

/** Returns what went wrong, if anything. */
function deleteNamespace(netns: string): string[] {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    for (const pid of pids) killQuietly(Number(pid));
    execFileSync('ip', ['netns', 'delete', netns], { stdio: 'pipe' });
    return [];
  } catch (error) {
    return [`${netns}: ${(error as Error).message}`];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Exited meanwhile.
  }
}

/** A test process killed before its exit hook ran leaves its namespaces behind; the next lab removes them. */
function removeNamespacesOfEndedProcesses(): void {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '');
  for (const netns of names) {
    const owner = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(netns)?.[1];
    if (owner !== undefined && !isAlive(Number(owner))) deleteNamespace(netns);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
