/**
 * Section 4: wall time of `mesh-iptables` applying the rules a default pod gets, each repetition in a fresh network
 * namespace, against what the same rules cost applied other ways in the same run: one `iptables-restore --noflush`
 * of the same text, one `iptables` process per rule (how Istio's and Linkerd's shell scripts used to do it), and
 * Node's bare startup (`node -e 0`), the floor under any Node program. Every command runs under `ip netns exec`,
 * whose own cost (`true`) is printed too. mesh-iptables runs as the init image runs it: the bundle package.json's
 * bin names, with a V8 compile cache (NODE_COMPILE_CACHE) filled before the timed runs, as the image's build fills
 * it (Node 22 and newer; older Node ignores it).
 *
 * Targets (issue 12): applying takes at most 1.2× (`node -e 0` + `iptables-restore --noflush` of the same text),
 * and `--dry-run` at most 1.1× `node -e 0`, medians of the same run. Every method is timed the same way: a fresh
 * namespace, `ip netns exec`, stdout and stderr on pipes, as a container's are. The floor's two terms each pay for
 * `ip netns exec` (and the restore for `sh` redirecting its input), which mesh-iptables pays once, so the section
 * also prints the stricter ratio against the floor with one `ip netns exec` (`true`) taken off; and, when strace
 * is installed, which processes one apply starts.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { CHAIN_PREFIX, CONTAINER_NAMES } from '../common/constants.js';
import { loadConfig } from '../webhook/config.js';
import { injectPod } from '../webhook/inject.js';
import { hasCommand, isRoot } from '../test/harness/requirements.js';
import { repoPath } from '../test/harness/repo.js';
import { SHIPPED_CONFIG_DIR } from '../test/harness/webhook-process.js';
import { capture, timeCommand } from './processes.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import {
  parseRestoreText,
  ruleCount,
  toPerRuleScript,
  toRestoreText,
  type TableRules,
} from './restore-text.js';
import { median, ratio } from './stats.js';

const SECTION = '4. Init program (mesh-iptables)';
const MESH_IPTABLES = repoPath(
  (JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { bin: Record<string, string> }).bin[
    'mesh-iptables'
  ] ?? 'dist/mesh-iptables.cjs',
);
/** The targets of issue 12: ratios of medians measured in the same run. */
export const INIT_TARGETS = { apply: 1.2, dryRun: 1.1 } as const;

type Backend = 'nft' | 'legacy';

const METHODS = [
  'mesh-iptables',
  'mesh-iptables --dry-run',
  'iptables-restore --noflush',
  'one iptables call per rule',
  'node -e 0',
  'ip netns exec true',
] as const;
type Method = (typeof METHODS)[number];

export async function benchInitProgram(report: Report, repetitions: number): Promise<void> {
  report.section(SECTION);
  if (!existsSync(MESH_IPTABLES)) return report.skip(SECTION, `${MESH_IPTABLES} not built`);
  if (!isRoot()) return report.skip(SECTION, 'not root (network namespaces and iptables need it)');
  const missing = ['ip', 'iptables', 'iptables-restore', 'iptables-save'].filter((c) => !hasCommand(c));
  if (missing.length > 0) return report.skip(SECTION, `missing ${missing.join(', ')}`);

  const args = [...(await defaultPodInitArgs()), '--ipv6=false'];
  report.note(`mesh-iptables ${args.join(' ')} (Node ${process.version})`);
  const dir = await mkdtemp(join(tmpdir(), 'mi-bench-'));
  const namespaces = new NamespaceFactory();
  // What the init image sets, for every command of this section alike (only Node reads it); the untimed runs
  // below (dry run, backend, same-rules check) fill the cache.
  const previousCache = process.env.NODE_COMPILE_CACHE;
  process.env.NODE_COMPILE_CACHE = join(dir, 'compile-cache');
  const meshIptables = [process.execPath, MESH_IPTABLES];
  try {
    const tables = await dryRunRules(namespaces, meshIptables, args);
    const backend = await appliedBackend(namespaces, meshIptables, args);
    const iptables = `iptables-${backend}`;
    const restorePath = join(dir, 'rules.txt');
    const scriptPath = join(dir, 'per-rule.sh');
    await writeFile(restorePath, toRestoreText(tables));
    await writeFile(scriptPath, toPerRuleScript(tables, iptables));
    report.note(`${ruleCount(tables)} rule lines; mesh-iptables applied them with the ${backend} backend`);

    const commands: Record<Method, string[]> = {
      'mesh-iptables': [...meshIptables, ...args],
      // Everything but touching the kernel's tables: what the program costs on its own.
      'mesh-iptables --dry-run': [...meshIptables, ...args, '--dry-run'],
      'iptables-restore --noflush': [
        'sh',
        '-c',
        `exec ${iptables}-restore --noflush < "$1"`,
        'sh',
        restorePath,
      ],
      'one iptables call per rule': ['sh', scriptPath],
      'node -e 0': [process.execPath, '-e', '0'],
      'ip netns exec true': ['true'],
    };
    await checkSameRules(namespaces, commands, backend);
    const started = await processesStarted(namespaces, commands['mesh-iptables'], dir);
    if (started !== undefined) {
      report.note(
        `one apply in a fresh namespace starts ${started.length} processes: ${started.join(', ') || 'none'}`,
      );
    }

    const samples = new Map<Method, number[]>(METHODS.map((method) => [method, []]));
    for (let repetition = 0; repetition < repetitions; repetition++) {
      // Rotating the order spreads whatever else the machine is doing over all methods alike.
      for (let i = 0; i < METHODS.length; i++) {
        const method = METHODS[(repetition + i) % METHODS.length]!;
        const ms = await namespaces.within((namespace) =>
          timeCommand('ip', ['netns', 'exec', namespace, ...commands[method]]),
        );
        samples.get(method)!.push(ms);
      }
    }
    reportTimes(report, samples, repetitions, ruleCount(tables));
  } finally {
    if (previousCache === undefined) delete process.env.NODE_COMPILE_CACHE;
    else process.env.NODE_COMPILE_CACHE = previousCache;
    await namespaces.removeAll();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The istio-init container's args for a pod with no annotations, rendered by the webhook itself. */
async function defaultPodInitArgs(): Promise<string[]> {
  const config = await loadConfig(SHIPPED_CONFIG_DIR);
  const pod: V1Pod = {
    metadata: { name: 'bench', namespace: 'default' },
    spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
  };
  const result = injectPod(pod, 'default', { ...config, nativeSidecars: false });
  if (result.outcome !== 'injected') throw new Error(`the webhook denied a default pod: ${result.message}`);
  const init = result.pod.spec?.initContainers?.find((c) => c.name === CONTAINER_NAMES.init);
  if (!init?.args) throw new Error(`the webhook injected no ${CONTAINER_NAMES.init} container with args`);
  return init.args;
}

async function dryRunRules(
  namespaces: NamespaceFactory,
  meshIptables: string[],
  args: string[],
): Promise<TableRules[]> {
  // A dry run prints the restore input, and only that, on stdout (the log on stderr repeats it).
  const output = await namespaces.within(async (namespace) => {
    const command = ['netns', 'exec', namespace, ...meshIptables, ...args, '--dry-run'];
    const { code, stdout, stderr } = await capture('ip', command);
    if (code !== 0) throw new Error(`mesh-iptables --dry-run exited with ${code}: ${stderr.trim()}`);
    return stdout;
  });
  const tables = parseRestoreText(output);
  if (ruleCount(tables) === 0) throw new Error(`mesh-iptables --dry-run printed no rules:\n${output}`);
  return tables;
}

/** Which iptables backend mesh-iptables chose in a fresh namespace: the baselines must use the same one. */
async function appliedBackend(
  namespaces: NamespaceFactory,
  meshIptables: string[],
  args: string[],
): Promise<Backend> {
  return namespaces.within(async (namespace) => {
    await runOk('ip', ['netns', 'exec', namespace, ...meshIptables, ...args]);
    for (const backend of ['nft', 'legacy'] as const) {
      if ((await natRules(namespace, backend)).some((rule) => rule.includes(CHAIN_PREFIX))) return backend;
    }
    throw new Error(
      `after mesh-iptables, neither iptables-nft-save nor iptables-legacy-save shows ${CHAIN_PREFIX} rules`,
    );
  });
}

/** The three ways of applying must leave the same nat rules behind, or comparing their times means nothing. */
async function checkSameRules(
  namespaces: NamespaceFactory,
  commands: Record<Method, string[]>,
  backend: Backend,
): Promise<void> {
  const applied = new Map<Method, string[]>();
  for (const method of [
    'mesh-iptables',
    'iptables-restore --noflush',
    'one iptables call per rule',
  ] as const) {
    applied.set(
      method,
      await namespaces.within(async (namespace) => {
        await runOk('ip', ['netns', 'exec', namespace, ...commands[method]]);
        return natRules(namespace, backend);
      }),
    );
  }
  const reference = JSON.stringify(applied.get('mesh-iptables'));
  for (const [method, rules] of applied) {
    if (JSON.stringify(rules) !== reference) {
      throw new Error(
        `${method} left different nat rules than mesh-iptables:\n${rules.join('\n')}\n--- mesh-iptables:\n` +
          (applied.get('mesh-iptables') ?? []).join('\n'),
      );
    }
  }
}

async function natRules(namespace: string, backend: Backend): Promise<string[]> {
  const saved = await runOk('ip', ['netns', 'exec', namespace, `iptables-${backend}-save`, '-t', 'nat']);
  return saved.split('\n').filter((line) => line.startsWith('-A'));
}

function reportTimes(
  report: Report,
  samples: Map<Method, number[]>,
  repetitions: number,
  rules: number,
): void {
  const medians = new Map(METHODS.map((method) => [method, median(samples.get(method) ?? [])]));
  const ms = (method: Method) => medians.get(method) ?? Number.NaN;
  for (const method of METHODS) report.figure(SECTION, `${method}: median`, ms(method), 'ms');
  const own = ms('mesh-iptables') - ms('node -e 0');
  report.figure(SECTION, 'mesh-iptables minus Node startup', own, 'ms');
  const meshOver = (method: Method) => ratio(ms('mesh-iptables'), ms(method));
  for (const method of METHODS.filter((m) => m !== 'mesh-iptables')) {
    report.figure(SECTION, `mesh-iptables / ${method}`, meshOver(method), '×');
  }
  const floor = ms('node -e 0') + ms('iptables-restore --noflush');
  const applyRatio = ratio(ms('mesh-iptables'), floor);
  const dryRunRatio = ratio(ms('mesh-iptables --dry-run'), ms('node -e 0'));
  report.target(
    {
      section: SECTION,
      figure: 'mesh-iptables / (node -e 0 + iptables-restore --noflush)',
      value: applyRatio,
      unit: '×',
      target: `≤${INIT_TARGETS.apply}×`,
    },
    applyRatio <= INIT_TARGETS.apply,
  );
  report.target(
    {
      section: SECTION,
      figure: 'mesh-iptables --dry-run / node -e 0',
      value: dryRunRatio,
      unit: '×',
      target: `≤${INIT_TARGETS.dryRun}×`,
    },
    dryRunRatio <= INIT_TARGETS.dryRun,
  );
  const strictFloor = floor - ms('ip netns exec true');
  report.figure(
    SECTION,
    'floor with one ip netns exec (node -e 0 + iptables-restore - true)',
    strictFloor,
    'ms',
  );
  report.figure(
    SECTION,
    'mesh-iptables / floor with one ip netns exec',
    ratio(ms('mesh-iptables'), strictFloor),
    '×',
  );
  report.details.initProgram = {
    node: process.version,
    repetitions,
    rules,
    samplesMs: Object.fromEntries(samples),
  };
  report.table({
    title: `Init program: applying a default pod's ${rules} rule lines in a fresh network namespace`,
    header: ['Method', 'Median ms', 'mesh-iptables ÷ this'],
    rows: [
      ...METHODS.map((method) => [method, formatNumber(ms(method)), formatRatio(meshOver(method))]),
      ['mesh-iptables minus `node -e 0`', formatNumber(own), ''],
      [
        '`node -e 0` + `iptables-restore --noflush` (the floor)',
        formatNumber(floor),
        formatRatio(applyRatio),
      ],
      [
        'the floor with one `ip netns exec` (minus `ip netns exec true`)',
        formatNumber(strictFloor),
        formatRatio(ratio(ms('mesh-iptables'), strictFloor)),
      ],
    ],
    notes: [
      `Median of ${repetitions} repetitions, a fresh namespace each, every command under \`ip netns exec\`, ` +
        `Node ${process.version}. Targets: mesh-iptables ≤${INIT_TARGETS.apply}× the floor, ` +
        `\`--dry-run\` ≤${INIT_TARGETS.dryRun}× \`node -e 0\`.`,
    ],
  });
}

/**
 * The programs one apply starts in a fresh namespace, by strace's record of execve (undefined without strace):
 * what the process count of docs/init.md is measured with.
 */
async function processesStarted(
  namespaces: NamespaceFactory,
  command: readonly string[],
  dir: string,
): Promise<string[] | undefined> {
  if (!hasCommand('strace')) return undefined;
  const trace = join(mkdtempSync(join(dir, 'strace-')), 'execve.txt');
  await namespaces.within((namespace) =>
    runOk('strace', [
      '-f',
      '-qq',
      '-e',
      'trace=execve',
      '-o',
      trace,
      'ip',
      'netns',
      'exec',
      namespace,
      ...command,
    ]),
  );
  const programs = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((line) => line.includes('execve(') && line.endsWith('= 0'))
    .map((line) => /execve\("[^"]*\/([^/"]+)"/.exec(line)?.[1] ?? '')
    .filter((name) => name !== '' && name !== 'ip' && name !== 'node');
  return programs;
}

async function runOk(command: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await capture(command, args);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`);
  return stdout;
}

/** Network namespaces named mi-bench-<pid>-<n>, each removed after use and all removed at the end. */
class NamespaceFactory {
  private next = 0;
  private readonly live = new Set<string>();

  async create(): Promise<string> {
    const name = `mi-bench-${process.pid}-${this.next++}`;
    await runOk('ip', ['netns', 'add', name]);
    this.live.add(name);
    return name;
  }

  async remove(name: string): Promise<void> {
    this.live.delete(name);
    await runOk('ip', ['netns', 'delete', name]);
  }

  async within<T>(use: (namespace: string) => Promise<T>): Promise<T> {
    const namespace = await this.create();
    try {
      return await use(namespace);
    } finally {
      await this.remove(namespace);
    }
  }

  async removeAll(): Promise<void> {
    for (const name of [...this.live]) await this.remove(name).catch(() => undefined);
  }
}
