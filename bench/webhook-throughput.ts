/**
 * Section 1: the real webhook process (`node dist/cli/main.js serve`) under autocannon load from another process,
 * against a bare Fastify baseline measured in the same run; and the load for section 3 (memory.ts).
 *
 * The typical pod's webhook process also serves the memory check, counting this section's requests towards its
 * 100 000. Large pods get their own webhook process, because their 1 MiB bodies grow the heap in a way that says
 * nothing about leaks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { INJECT_PATH } from '../common/constants.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';
import { postJson } from './https-client.js';
import type { LoadResult, LoadSpec } from './load-worker.js';
import { admissionReviewBody, POD_KINDS, type PodKind } from './pods.js';
import {
  INSPECT_FLAG,
  inspectorUrlIn,
  readRssBytes,
  runLoad,
  startBaselineServer,
  type BaselineServer,
} from './processes.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { MemoryProbe, measureMemory, reportMemory, type MemorySettings } from './memory.js';
import { ratio } from './stats.js';

export interface ThroughputSettings extends MemorySettings {
  durationSeconds: number;
}

const SECTION_LOAD = '1. Webhook throughput and latency';

interface Cell {
  pod: PodKind;
  connections: number;
  injector: LoadResult;
  baseline: LoadResult;
}

export async function benchWebhookThroughput(report: Report, settings: ThroughputSettings): Promise<void> {
  report.section(SECTION_LOAD);
  const started: { stop(): Promise<void> }[] = [];
  try {
    // The inspector lets the memory check force a garbage collection before each reading.
    const typicalWebhook = await startWebhookProcess({ nodeFlags: [INSPECT_FLAG] });
    started.push(typicalWebhook);
    const webhookInspector = inspectorUrlIn(typicalWebhook.logs().join('\n'));
    if (!webhookInspector) throw new Error('the webhook process printed no inspector URL');
    const baseline = await startBaselineServer(typicalWebhook.certPath, typicalWebhook.keyPath);
    started.push(baseline);
    const responseSizes = await checkAnswers(typicalWebhook, baseline);
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
        webhook = await startWebhookProcess();
        started.push(webhook);
      }
      for (const connections of settings.concurrencies) {
        const baselineResult = await runLoad(loadSpec(baseline.origin, pod, connections, settings));
        const injectorResult = await runLoad(loadSpec(webhook.url, pod, connections, settings));
        if (pod === 'typical') memory.count(injectorResult);
        const cell = { pod, connections, injector: injectorResult, baseline: baselineResult };
        cells.push(cell);
        printCell(report, cell);
      }
      if (pod === 'large') {
        await sleep(settings.settleMs);
        const rss = await readRssBytes(webhook.pid);
        report.figure(SECTION_LOAD, 'large-pod webhook RSS after its load', rss / (1024 * 1024), 'MiB');
      }
    }
    checkLoadTargets(report, cells);
    report.table(loadTable(cells, settings, responseSizes));
    report.details.load = { cells, responseSizes };

    const injectorMemory = await measureMemory(memory);
    // The control: a fresh baseline server given the same number of requests.
    const memoryBaseline = await startBaselineServer(typicalWebhook.certPath, typicalWebhook.keyPath, {
      inspect: true,
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
    reportMemory(report, injectorMemory, baselineMemory);
  } finally {
    for (const process of started.reverse()) await process.stop();
  }
}

function loadSpec(origin: string, pod: PodKind, connections: number, settings: ThroughputSettings): LoadSpec {
  return {
    origin,
    pod,
    connections,
    warmupSeconds: settings.warmupSeconds,
    durationSeconds: settings.durationSeconds,
  };
}

/** Before measuring anything: the webhook must inject both pods, and the baseline must admit them. */
async function checkAnswers(webhook: WebhookProcess, baseline: BaselineServer): Promise<ResponseSizes> {
  const sizes: ResponseSizes = {};
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
    const admitted = await postJson(`${baseline.origin}${INJECT_PATH}`, webhook.ca.cert, body);
    if ((admitted.json as { response?: { allowed?: boolean } }).response?.allowed !== true) {
      throw new Error(`the baseline did not admit the ${pod} pod: ${JSON.stringify(admitted.json)}`);
    }
    sizes[pod] = {
      injector: Buffer.byteLength(JSON.stringify(injected.json)),
      baseline: Buffer.byteLength(JSON.stringify(admitted.json)),
    };
  }
  return sizes;
}

/** Response body bytes per pod: the injector's carries the patch, the baseline's only `allowed: true`. */
type ResponseSizes = Partial<Record<PodKind, { injector: number; baseline: number }>>;

function printCell(report: Report, { pod, connections, injector, baseline }: Cell): void {
  const name = `${pod} pod, c=${connections}`;
  report.figure(SECTION_LOAD, `${name}: injector throughput`, injector.requestsPerSecond, 'req/s');
  report.figure(SECTION_LOAD, `${name}: injector p50`, injector.latencyMs.p50, 'ms');
  report.figure(SECTION_LOAD, `${name}: injector p99`, injector.latencyMs.p99, 'ms');
  report.figure(SECTION_LOAD, `${name}: baseline throughput`, baseline.requestsPerSecond, 'req/s');
  report.figure(SECTION_LOAD, `${name}: baseline p50`, baseline.latencyMs.p50, 'ms');
  report.figure(SECTION_LOAD, `${name}: baseline p99`, baseline.latencyMs.p99, 'ms');
  report.figure(
    SECTION_LOAD,
    `${name}: throughput injector/baseline`,
    ratio(injector.requestsPerSecond, baseline.requestsPerSecond),
    '×',
  );
  for (const [who, result] of [
    ['injector', injector],
    ['baseline', baseline],
  ] as const) {
    const failed = result.non2xx + result.errors + result.timeouts;
    if (failed > 0) {
      report.note(
        `WARNING ${name}: ${who} had ${result.non2xx} non-2xx responses, ${result.errors} errors, ` +
          `${result.timeouts} timeouts; only 2xx responses are counted`,
      );
    }
  }
}

function checkLoadTargets(report: Report, cells: Cell[]): void {
  for (const cell of cells) {
    const name = `${cell.pod} pod, c=${cell.connections}`;
    if (cell.pod === 'typical') {
      const throughputRatio = ratio(cell.injector.requestsPerSecond, cell.baseline.requestsPerSecond);
      report.target(
        {
          section: SECTION_LOAD,
          figure: `${name}: throughput injector/baseline`,
          value: throughputRatio,
          unit: '×',
          target: '≥0.5× baseline',
        },
        throughputRatio >= 0.5,
      );
      if (cell.connections === 64) {
        report.target(
          {
            section: SECTION_LOAD,
            figure: `${name}: injector p99`,
            value: cell.injector.latencyMs.p99,
            unit: 'ms',
            target: 'p99 ≤ 10 ms at concurrency 64',
          },
          cell.injector.latencyMs.p99 <= 10,
        );
      }
    }
    if (cell.pod === 'large' && cell.connections === 1) {
      report.target(
        {
          section: SECTION_LOAD,
          figure: `${name}: injector p50`,
          value: cell.injector.latencyMs.p50,
          unit: 'ms',
          target: 'large pod p50 < 20 ms',
        },
        cell.injector.latencyMs.p50 < 20,
      );
    }
  }
}

function loadTable(cells: Cell[], settings: ThroughputSettings, sizes: ResponseSizes) {
  const ms = (result: LoadResult) =>
    `${formatNumber(result.latencyMs.p50)} / ${formatNumber(result.latencyMs.p99)}`;
  return {
    title: 'Webhook throughput and latency (HTTPS keep-alive, autocannon in a separate process)',
    header: [
      'Pod',
      'Concurrency',
      'Injector req/s',
      'Baseline req/s',
      'Injector/baseline',
      'Injector p50 / p99 ms',
      'Baseline p50 / p99 ms',
    ],
    rows: cells.map((cell) => [
      `${cell.pod} (${kib(Buffer.byteLength(admissionReviewBody(cell.pod)))} KiB review)`,
      String(cell.connections),
      formatNumber(cell.injector.requestsPerSecond),
      formatNumber(cell.baseline.requestsPerSecond),
      formatRatio(ratio(cell.injector.requestsPerSecond, cell.baseline.requestsPerSecond)),
      ms(cell.injector),
      ms(cell.baseline),
    ]),
    notes: [
      `${settings.durationSeconds} s per cell after a ${settings.warmupSeconds} s warm-up. Baseline: bare Fastify ` +
        'HTTPS in its own process, same TLS and body limit, parses the review and answers `allowed: true`.',
      'Response bodies: ' +
        POD_KINDS.map(
          (pod) =>
            `${pod} pod ${formatNumber((sizes[pod]?.injector ?? Number.NaN) / 1024)} KiB from the injector ` +
            `(the patch, with the proxy's bootstrap), ${sizes[pod]?.baseline ?? 'n/a'} bytes from the baseline`,
        ).join('; ') +
        '.',
    ],
  };
}

const kib = (bytes: number) => Math.round(bytes / 1024);
