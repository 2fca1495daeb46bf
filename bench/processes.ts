/** The bench's child processes: the baseline server, the load generator, timed commands, and RSS readings. */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { terminate } from '../test/harness/child-process.js';
import { statFields } from '../test/harness/proc.js';
import { repoPath } from '../test/harness/repo.js';
import type { LoadResult, LoadSpec } from './load-worker.js';

// The built scripts, also when this module runs from source (in vitest).
const LOAD_WORKER = repoPath('dist', 'bench', 'load-worker.js');
const BASELINE_SERVER = repoPath('dist', 'bench', 'baseline-server.js');
const COLLECT_GARBAGE = repoPath('dist', 'bench', 'collect-garbage.js');

/** Makes a Node process listen for an inspector on a free loopback port; no session, no cost until one connects. */
export const INSPECT_FLAG = '--inspect=127.0.0.1:0';

export interface BaselineServer {
  origin: string;
  pid: number;
  /** The inspector's ws:// URL, when started with `inspect`. */
  inspectorUrl: string | undefined;
  stop(): Promise<void>;
}

export interface BaselineOptions {
  /** Listen for an inspector (for the memory check's forced garbage collection). */
  inspect?: boolean;
  /** Answer every review with these bytes (the size-matched floor) instead of a bare `allowed: true`. */
  responseFile?: string;
  /** With responseFile: put each review's uid in that answer, as a real kube-apiserver requires. */
  echoUid?: boolean;
  /** Extra environment (serverRuntime's allocator). */
  env?: Record<string, string>;
}

export async function startBaselineServer(
  certPath: string,
  keyPath: string,
  { inspect = false, responseFile, echoUid = false, env }: BaselineOptions = {},
): Promise<BaselineServer> {
  const child = spawn(
    process.execPath,
    [
      ...(inspect ? [INSPECT_FLAG] : []),
      BASELINE_SERVER,
      certPath,
      keyPath,
      ...(responseFile ? ['--response', responseFile] : []),
      ...(responseFile && echoUid ? ['--echo-uid'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let stderr = '';
  // Kept for the error message if it fails to start; it writes nothing else but the inspector's notices.
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await terminate(child, 5_000);
  };
  const firstLine = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    child.once('exit', (code) =>
      reject(new Error(`baseline server exited with ${code} before listening: ${stderr}`)),
    );
  });
  const { port } = JSON.parse(firstLine) as { port: number };
  const inspectorUrl = inspect ? inspectorUrlIn(stderr) : undefined;
  if (inspect && !inspectorUrl) throw new Error(`the baseline server printed no inspector URL: ${stderr}`);
  return { origin: `https://127.0.0.1:${port}`, pid: child.pid ?? -1, inspectorUrl, stop };
}

/** The URL from Node's `Debugger listening on ws://…` line. */
export function inspectorUrlIn(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
}

/** A full garbage collection in the process behind an inspector URL (see collect-garbage.ts). */
export async function collectGarbage(inspectorUrl: string): Promise<void> {
  const { code, stderr } = await capture(process.execPath, [
    '--experimental-websocket',
    '--no-warnings',
    COLLECT_GARBAGE,
    inspectorUrl,
  ]);
  if (code !== 0) throw new Error(`cannot collect garbage through ${inspectorUrl}: ${stderr.trim()}`);
}

/** Runs autocannon in a child process and returns what it measured. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const { code, stdout, stderr } = await capture(process.execPath, [LOAD_WORKER, JSON.stringify(spec)]);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`load worker for ${JSON.stringify(spec)} failed with exit code ${code}: ${stderr}`);
  }
  return JSON.parse(last) as LoadResult;
}

/** Wall time of one run of a command, from spawn to exit; throws naming the command if it fails. */
export async function timeCommand(command: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  const { code, stderr } = await capture(command, args);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`);
  return ms;
}

export async function capture(
  command: string,
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (input !== undefined) child.stdin?.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  return { code, stdout, stderr };
}

/**
 * CPU time a process has used so far, user plus system, over all its threads (so garbage collection and TLS work
 * off the main thread count), in seconds; /proc accounts it in clock ticks of 1/CLK_TCK s.
 */
export async function readCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = statFields(stat);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read /proc/${pid}/stat`);
  return (utime + stime) / (await clockTicksPerSecond());
}

let clockTicks: Promise<number> | undefined;

function clockTicksPerSecond(): Promise<number> {
  return (clockTicks ??= capture('getconf', ['CLK_TCK']).then(({ code, stdout }) => {
    const ticks = Number(stdout.trim());
    if (code !== 0 || !Number.isInteger(ticks) || ticks <= 0) throw new Error('getconf CLK_TCK failed');
    return ticks;
  }));
}

/** VmRSS of a process, in bytes, from /proc/<pid>/status. */
export async function readRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}
