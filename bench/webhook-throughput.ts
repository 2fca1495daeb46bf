/**
 * Section 1: the real webhook process (`node dist/cli/main.js serve`) under autocannon load from another process,
 * against two baselines measured in the same run: the size-matched floor (bare Fastify answering with the
 * injector's own answer bytes, precomputed) and the bare baseline (`allowed: true`); and the load for section 3
 * (memory.ts). Each server's CPU time per request (process CPU ÷ requests, from /proc) is printed beside it.
 *
 * The typical pod's webhook process also serves the memory check, counting this section's requests towards its
 * 100 000. Large pods get their own webhook process, because their 1 MiB bodies grow the heap in a way that says
 * nothing about leaks.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { INJECT_PATH } from '../common/constants.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';
import { postJson } from './https-client.js';
import type { LoadResult, LoadSpec } from './load-worker.js';
import { admissionReviewBody, POD_KINDS, type PodKind } from './pods.js';
import {
  INSPECT_FLAG,
  inspectorUrlIn,
  readCpuSeconds,
  readRssBytes,
  runLoad,
  startBaselineServer,
  type BaselineServer,
} from './processes.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { MemoryProbe, measureMemory, reportMemory, type MemorySettings } from './memory.js';
import { serverRuntime } from './server-runtime.js';
import { median, ratio } from './stats.js';

export interface ThroughputSettings extends MemorySettings {
  durationSeconds: number;
  /** Runs per server and cell, interleaved; each figure is the median over them. */
  rounds: number;
}

const SECTION_LOAD = '1. Webhook throughput and latency';
/** Targets against the size-matched floor (issue 12). */
const MIN_THROUGHPUT_VS_FLOOR = 0.5;
const MAX_P99_VS_FLOOR = 1.5;
const P99_TARGET_CONNECTIONS = 64;

/** One load run against one server, with the CPU time the server spent on it. */
export interface Measured {
  load: LoadResult;
  /** Process CPU time (all threads) during the run, warm-up included, ÷ every request sent in it; µs. */
  cpuMicrosPerRequest: number;
}

const SERVERS = ['injector', 'floor', 'bare'] as const;
type ServerName = (typeof SERVERS)[number];

interface Cell extends Record<ServerName, Measured> {
  pod: PodKind;
  connections: number;
}

interface Target {
  origin: string;
  pid: number;
}

export async function benchWebhookThroughput(report: Report, settings: ThroughputSettings): Promise<void> {
  report.section(SECTION_LOAD);
  const started: { stop(): Promise<void> }[] = [];
  const answersDir = await mkdtemp(join(tmpdir(), 'mesh-injector-bench-'));
  try {
    // The inspector lets the memory check force a garbage collection before each reading.
    const { env } = serverRuntime();
    const typicalWebhook = await startWebhookProcess({ nodeFlags: [INSPECT_FLAG], env });
    started.push(typicalWebhook);
    const webhookInspector = inspectorUrlIn(typicalWebhook.logs().join('\n'));
    if (!webhookInspector) throw new Error('the webhook process printed no inspector URL');
    const bare = await startBaselineServer(typicalWebhook.certPath, typicalWebhook.keyPath, { env });
    started.push(bare);
    const answers = await checkAnswers(typicalWebhook, bare);
    const memory = new MemoryProbe(
      {
        pid: typicalWebhook.pid,
        origin: typicalWebhook.url,
        inspectorUrl: webhookInspector,
        metrics: { url: `${typicalWebhook.url}/metrics`, caPem: typicalWebhook.ca.cert },
      },
      settings,
    );
    await memory.warmUp();

    const cells: Cell[] = [];
    for (const pod of POD_KINDS) {
      let webhook: WebhookProcess = typicalWebhook;
      if (pod === 'large') {
        webhook = await startWebhookProcess({ env });
        started.push(webhook);
      }
      const answerFile = join(answersDir, `${pod}.json`);
      await writeFile(answerFile, answers[pod].injectorText);
      const floor = await startBaselineServer(typicalWebhook.certPath, typicalWebhook.keyPath, {
        responseFile: answerFile,
        env,
      });
      started.push(floor);
      await checkFloor(floor, typicalWebhook.ca.cert, pod, answers[pod].injectorText);
      const targets: Record<ServerName, Target> = {
        injector: { origin: webhook.url, pid: webhook.pid },
        floor: { origin: floor.origin, pid: floor.pid },
        bare: { origin: bare.origin, pid: bare.pid },
      };
      for (const connections of settings.concurrencies) {
        const rounds: Record<ServerName, Measured[]> = { bare: [], floor: [], injector: [] };
        for (let round = 0; round < settings.rounds; round++) {
          // The order rotates from round to round, so the machine's drift falls on the three servers alike.
          for (let i = 0; i < SERVERS.length; i++) {
            const server = SERVERS[(round + i) % SERVERS.length]!;
            const measured = await measure(targets[server], loadSpec(pod, connections, settings));
            rounds[server].push(measured);
            if (pod === 'typical' && server === 'injector') memory.count(measured.load);
          }
        }
        const cell: Cell = {
          pod,
          connections,
          injector: medianRound(rounds.injector),
          floor: medianRound(rounds.floor),
          bare: medianRound(rounds.bare),
        };
        cells.push(cell);
        printCell(report, cell);
        report.note(
          `${pod} pod, c=${connections}, req/s by round: ` +
            SERVERS.map(
              (server) =>
                `${server} ${rounds[server].map(({ load }) => formatNumber(load.requestsPerSecond)).join(' / ')}`,
            ).join('; '),
        );
      }
      await floor.stop();
      if (pod === 'large') {
        await sleep(settings.settleMs);
        const rss = await readRssBytes(webhook.pid);
        report.figure(SECTION_LOAD, 'large-pod webhook RSS after its load', rss / (1024 * 1024), 'MiB');
      }
    }
    checkLoadTargets(report, cells);
    report.table(loadTable(cells, settings, answers));
    report.table(cpuTable(cells));
    report.details.load = {
      cells,
      responseSizes: Object.fromEntries(
        POD_KINDS.map((pod) => [pod, { injector: answers[pod].injector, bare: answers[pod].bare }]),
      ),
    };

    const injectorMemory = await measureMemory(memory);
    // The control: a fresh bare baseline server given the same number of requests.
    const memoryBaseline = await startBaselineServer(typicalWebhook.certPath, typicalWebhook.keyPath, {
      inspect: true,
      env,
    });
    started.push(memoryBaseline);
    const baselineMemory = await measureMemory(
      new MemoryProbe(
        {
          pid: memoryBaseline.pid,
          origin: memoryBaseline.origin,
          inspectorUrl: memoryBaseline.inspectorUrl!,
        },
        settings,
      ),
    );
    reportMemory(report, injectorMemory, baselineMemory, serverRuntime().description);
  } finally {
    for (const process of started.reverse()) await process.stop();
    await rm(answersDir, { recursive: true, force: true });
  }
}

async function measure(target: Target, spec: Omit<LoadSpec, 'origin'>): Promise<Measured> {
  const cpuBefore = await readCpuSeconds(target.pid);
  const load = await runLoad({ ...spec, origin: target.origin });
  const cpuSeconds = (await readCpuSeconds(target.pid)) - cpuBefore;
  return { load, cpuMicrosPerRequest: (cpuSeconds * 1e6) / (load.requests + load.warmupRequests) };
}

/**
 * The rounds of one server in one cell as one measurement: each figure the median over the rounds (so a ratio of two
 * servers compares medians), counts summed.
 */
export function medianRound(rounds: readonly Measured[]): Measured {
  const middle = (pick: (measured: Measured) => number) => median(rounds.map(pick));
  const sum = (pick: (load: LoadResult) => number) =>
    rounds.reduce((total, { load }) => total + pick(load), 0);
  return {
    load: {
      requests: sum((load) => load.requests),
      ok: sum((load) => load.ok),
      non2xx: sum((load) => load.non2xx),
      errors: sum((load) => load.errors),
      timeouts: sum((load) => load.timeouts),
      warmupRequests: sum((load) => load.warmupRequests),
      seconds: sum((load) => load.seconds),
      requestsPerSecond: middle(({ load }) => load.requestsPerSecond),
      latencyMs: {
        p50: middle(({ load }) => load.latencyMs.p50),
        p99: middle(({ load }) => load.latencyMs.p99),
        mean: middle(({ load }) => load.latencyMs.mean),
        max: middle(({ load }) => load.latencyMs.max),
      },
    },
    cpuMicrosPerRequest: middle((measured) => measured.cpuMicrosPerRequest),
  };
}

function loadSpec(pod: PodKind, connections: number, settings: ThroughputSettings): Omit<LoadSpec, 'origin'> {
  return {
    pod,
    connections,
    warmupSeconds: settings.warmupSeconds,
    durationSeconds: settings.durationSeconds,
  };
}

interface Answers {
  /** The injector's answer, byte for byte: what the size-matched floor sends. */
  injectorText: string;
  injector: number;
  bare: number;
}

/** Before measuring anything: the webhook must inject both pods, and the bare baseline must admit them. */
async function checkAnswers(
  webhook: WebhookProcess,
  bare: BaselineServer,
): Promise<Record<PodKind, Answers>> {
  const answers = {} as Record<PodKind, Answers>;
  for (const pod of POD_KINDS) {
    const body = admissionReviewBody(pod);
    const injected = await postJson(`${webhook.url}${INJECT_PATH}`, webhook.ca.cert, body);
    const response = (injected.json as { response?: { allowed?: boolean; patch?: string } }).response;
    if (injected.status !== 200 || response?.allowed !== true || !response.patch) {
      throw new Error(
        `the webhook did not inject the ${pod} pod (HTTP ${injected.status}): ` +
          JSON.stringify(injected.json).slice(0, 500),
      );
    }
    const admitted = await postJson(`${bare.origin}${INJECT_PATH}`, webhook.ca.cert, body);
    if ((admitted.json as { response?: { allowed?: boolean } }).response?.allowed !== true) {
      throw new Error(`the bare baseline did not admit the ${pod} pod: ${JSON.stringify(admitted.json)}`);
    }
    answers[pod] = {
      injectorText: injected.text,
      injector: Buffer.byteLength(injected.text),
      bare: Buffer.byteLength(admitted.text),
    };
  }
  return answers;
}

async function checkFloor(
  floor: BaselineServer,
  caPem: string,
  pod: PodKind,
  expected: string,
): Promise<void> {
  const answer = await postJson(`${floor.origin}${INJECT_PATH}`, caPem, admissionReviewBody(pod));
  if (answer.text !== expected) {
    throw new Error(`the size-matched floor for the ${pod} pod does not answer with the injector's bytes`);
  }
}

function printCell(report: Report, cell: Cell): void {
  const name = `${cell.pod} pod, c=${cell.connections}`;
  for (const server of SERVERS) {
    const { load, cpuMicrosPerRequest } = cell[server];
    report.figure(SECTION_LOAD, `${name}: ${server} throughput`, load.requestsPerSecond, 'req/s');
    report.figure(SECTION_LOAD, `${name}: ${server} p50`, load.latencyMs.p50, 'ms');
    report.figure(SECTION_LOAD, `${name}: ${server} p99`, load.latencyMs.p99, 'ms');
    report.figure(SECTION_LOAD, `${name}: ${server} CPU per request`, cpuMicrosPerRequest, 'µs');
    const failed = load.non2xx + load.errors + load.timeouts;
    if (failed > 0) {
      report.note(
        `WARNING ${name}: ${server} had ${load.non2xx} non-2xx responses, ${load.errors} errors, ` +
          `${load.timeouts} timeouts; only 2xx responses are counted`,
      );
    }
  }
  report.figure(SECTION_LOAD, `${name}: throughput injector/bare`, throughputRatio(cell, 'bare'), '×');
}

const throughputRatio = (cell: Cell, baseline: 'floor' | 'bare') =>
  ratio(cell.injector.load.requestsPerSecond, cell[baseline].load.requestsPerSecond);

function checkLoadTargets(report: Report, cells: Cell[]): void {
  for (const cell of cells) {
    const name = `${cell.pod} pod, c=${cell.connections}`;
    if (cell.pod === 'typical') {
      const value = throughputRatio(cell, 'floor');
      report.target(
        {
          section: SECTION_LOAD,
          figure: `${name}: throughput injector/size-matched floor`,
          value,
          unit: '×',
          target: `≥${MIN_THROUGHPUT_VS_FLOOR}× the floor`,
        },
        value >= MIN_THROUGHPUT_VS_FLOOR,
      );
      if (cell.connections === P99_TARGET_CONNECTIONS) {
        const p99 = ratio(cell.injector.load.latencyMs.p99, cell.floor.load.latencyMs.p99);
        report.target(
          {
            section: SECTION_LOAD,
            figure:
              `${name}: p99 injector/size-matched floor (${formatNumber(cell.injector.load.latencyMs.p99)} ` +
              `/ ${formatNumber(cell.floor.load.latencyMs.p99)} ms)`,
            value: p99,
            unit: '×',
            target: `≤${MAX_P99_VS_FLOOR}× the floor's p99`,
          },
          p99 <= MAX_P99_VS_FLOOR,
        );
      }
    }
    if (cell.pod === 'large' && cell.connections === 1) {
      report.target(
        {
          section: SECTION_LOAD,
          figure: `${name}: injector p50`,
          value: cell.injector.load.latencyMs.p50,
          unit: 'ms',
          target: 'large pod p50 < 20 ms',
        },
        cell.injector.load.latencyMs.p50 < 20,
      );
    }
  }
}

const podLabel = (pod: PodKind) => `${pod} (${kib(Buffer.byteLength(admissionReviewBody(pod)))} KiB review)`;

function loadTable(cells: Cell[], settings: ThroughputSettings, answers: Record<PodKind, Answers>) {
  const ms = ({ load }: Measured) =>
    `${formatNumber(load.latencyMs.p50)} / ${formatNumber(load.latencyMs.p99)}`;
  return {
    title: 'Webhook throughput and latency (HTTPS keep-alive, autocannon in a separate process)',
    header: [
      'Pod',
      'c',
      'Injector req/s',
      'Floor req/s',
      'Bare req/s',
      'Injector/floor',
      'Injector/bare',
      'p50 / p99 ms: injector',
      'floor',
      'bare',
    ],
    rows: cells.map((cell) => [
      podLabel(cell.pod),
      String(cell.connections),
      ...SERVERS.map((server) => formatNumber(cell[server].load.requestsPerSecond)),
      formatRatio(throughputRatio(cell, 'floor')),
      formatRatio(throughputRatio(cell, 'bare')),
      ...SERVERS.map((server) => ms(cell[server])),
    ]),
    notes: [
      `Each figure is the median of ${settings.rounds} runs of ${settings.durationSeconds} s (after a ` +
        `${settings.warmupSeconds} s warm-up each), the three servers interleaved in rotating order. ` +
        'Floor: bare Fastify HTTPS in its own process, same TLS and body limit, parses the review and ' +
        "answers with the injector's own answer bytes for that pod, read from a file at start (the size-matched " +
        'floor). Bare: the same server answering `allowed: true`.',
      'Answer bodies: ' +
        POD_KINDS.map(
          (pod) =>
            `${pod} pod ${formatNumber(answers[pod].injector / 1024)} KiB from the injector and the floor ` +
            `(the patch, with the proxy's bootstrap), ${answers[pod].bare} bytes from the bare baseline`,
        ).join('; ') +
        '.',
    ],
  };
}

function cpuTable(cells: Cell[]) {
  const cpu = (measured: Measured) => formatNumber(measured.cpuMicrosPerRequest);
  return {
    title: 'CPU time per request (µs, process CPU over all threads ÷ requests)',
    header: ['Pod', 'c', 'Injector', 'Floor', 'Bare', 'Injector − floor'],
    rows: cells.map((cell) => [
      podLabel(cell.pod),
      String(cell.connections),
      cpu(cell.injector),
      cpu(cell.floor),
      cpu(cell.bare),
      formatNumber(cell.injector.cpuMicrosPerRequest - cell.floor.cpuMicrosPerRequest),
    ]),
    notes: [
      'User plus system time from /proc/<pid>/stat (clock ticks) over the warm-up and the measured run, divided ' +
        'by the requests sent in both; it includes garbage collection and anything else off the main thread.',
    ],
  };
}

const kib = (bytes: number) => Math.round(bytes / 1024);
