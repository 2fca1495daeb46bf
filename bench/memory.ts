/**
 * Section 3: a server process's memory under typical-pod load. Each reading follows a full garbage collection
 * forced through the process's inspector, so it measures what is live rather than where the collector happens to be
 * in its cycle (without it, readings of the same process swing by 40 MiB). Readings are VmRSS from /proc and, for
 * the webhook, V8's heap from its own /metrics, so a growing RSS can be told apart from a growing JavaScript heap.
 * The same readings of the bare baseline server under the same load say what Node and TLS grow on their own. Both
 * run on the malloc the webhook image preloads (server-runtime.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { getText } from './https-client.js';
import type { LoadResult } from './load-worker.js';
import { collectGarbage, readRssBytes, runLoad } from './processes.js';
import { readGauge } from './prometheus.js';
import { formatNumber, type Report } from './report.js';

const SECTION = '3. Memory';
const LOAD_CONNECTIONS = 16;
const ROUNDS = 4;
const MAX_RSS_GROWTH = 0.1;
/** The webhook's RSS after the load, against the bare baseline's after the same load (issue 12). */
const MAX_RSS_VS_BASELINE = 1.25;

export interface MemorySettings {
  memoryRequests: number;
  settleMs: number;
  warmupSeconds: number;
  concurrencies: readonly number[];
}

export interface MemoryReading {
  rss: number;
  /** nodejs_heap_size_used_bytes and _total_bytes; NaN for a server without /metrics. */
  heapUsed: number;
  heapTotal: number;
}

export interface MemoryTarget {
  pid: number;
  origin: string;
  /** Where to force a full garbage collection before each reading (see collect-garbage.ts). */
  inspectorUrl: string;
  /** The server's Prometheus endpoint and the CA to reach it, when it has one. */
  metrics?: { url: string; caPem: string };
}

/** Counts the requests a server has handled since the warm-up, and reads its memory. */
export class MemoryProbe {
  requests = 0;
  cold: MemoryReading | undefined;
  warm: MemoryReading | undefined;

  constructor(
    readonly target: MemoryTarget,
    private readonly settings: MemorySettings,
  ) {}

  count(result: LoadResult): void {
    this.requests += result.requests + result.warmupRequests;
  }

  /** Reads the idle process, then loads it at the highest concurrency the bench uses and reads it again. */
  async warmUp(): Promise<void> {
    this.cold = await this.reading();
    await runLoad({
      origin: this.target.origin,
      pod: 'typical',
      connections: Math.max(...this.settings.concurrencies),
      warmupSeconds: 0,
      durationSeconds: Math.max(3, this.settings.warmupSeconds),
    });
    this.warm = await this.reading();
    this.requests = 0;
  }

  /**
   * Sends the rest of the requests in a few rounds, reading memory after each: a leak climbs round after round,
   * while a heap still sizing itself levels off. Returns the readings, the last one after a settle.
   */
  async loadToTotal(): Promise<(MemoryReading & { requests: number })[]> {
    const trail: (MemoryReading & { requests: number })[] = [];
    for (let round = ROUNDS; round > 0; round--) {
      const amount = Math.ceil((this.settings.memoryRequests - this.requests) / round);
      if (amount <= 0) continue;
      this.count(
        await runLoad({
          origin: this.target.origin,
          pod: 'typical',
          connections: LOAD_CONNECTIONS,
          warmupSeconds: 0,
          durationSeconds: 0,
          amount,
        }),
      );
      trail.push({ requests: this.requests, ...(await this.reading({ settle: round === 1 })) });
    }
    // Section 1 may already have sent the whole amount: the growth is then read from one settled reading.
    if (trail.length === 0) trail.push({ requests: this.requests, ...(await this.reading()) });
    return trail;
  }

  async reading({ settle = true } = {}): Promise<MemoryReading> {
    if (settle) await sleep(this.settings.settleMs);
    await collectGarbage(this.target.inspectorUrl);
    const rss = await readRssBytes(this.target.pid);
    if (!this.target.metrics) return { rss, heapUsed: Number.NaN, heapTotal: Number.NaN };
    const text = await getText(this.target.metrics.url, this.target.metrics.caPem);
    return {
      rss,
      heapUsed: readGauge(text, 'nodejs_heap_size_used_bytes'),
      heapTotal: readGauge(text, 'nodejs_heap_size_total_bytes'),
    };
  }
}

export interface MemoryRun {
  cold: MemoryReading;
  warm: MemoryReading;
  trail: (MemoryReading & { requests: number })[];
}

export async function measureMemory(probe: MemoryProbe): Promise<MemoryRun> {
  if (!probe.warm) await probe.warmUp();
  const trail = await probe.loadToTotal();
  return { cold: probe.cold!, warm: probe.warm!, trail };
}

/**
 * Prints both runs, checks the webhook's RSS growth (over 10% fails the bench run) and adds the table. `allocator`
 * says which malloc both processes ran on (server-runtime.ts): it moves RSS by tens of MiB.
 */
export function reportMemory(
  report: Report,
  injector: MemoryRun,
  baseline: MemoryRun | undefined,
  allocator: string,
): void {
  report.section(SECTION);
  report.note(`allocator: ${allocator}`);
  const runs = [['webhook', injector] as const, ...(baseline ? [['baseline', baseline] as const] : [])];
  for (const [who, run] of runs) {
    const after = run.trail.at(-1)!;
    report.note(
      `${who}: RSS / V8 heap used after each round: ` +
        run.trail
          .map((t) => `${t.requests} → ${formatNumber(mib(t.rss))} / ${formatNumber(mib(t.heapUsed))} MiB`)
          .join(', '),
    );
    report.figure(SECTION, `${who} RSS idle (fresh process)`, mib(run.cold.rss), 'MiB');
    report.figure(SECTION, `${who} RSS idle after warm-up`, mib(run.warm.rss), 'MiB');
    report.figure(SECTION, `${who} RSS after ${after.requests} more requests`, mib(after.rss), 'MiB');
    if (who === 'webhook') {
      report.figure(SECTION, 'webhook V8 heap used after warm-up', mib(run.warm.heapUsed), 'MiB');
      report.figure(
        SECTION,
        `webhook V8 heap used after ${after.requests} requests`,
        mib(after.heapUsed),
        'MiB',
      );
      report.figure(SECTION, 'webhook V8 heap committed after warm-up', mib(run.warm.heapTotal), 'MiB');
      report.figure(
        SECTION,
        `webhook V8 heap committed after ${after.requests} requests`,
        mib(after.heapTotal),
        'MiB',
      );
    } else {
      report.figure(SECTION, 'baseline RSS growth after warm-up', growth(run.warm.rss, after.rss) * 100, '%');
    }
  }

  const after = injector.trail.at(-1)!;
  const rssGrowth = growth(injector.warm.rss, after.rss);
  const met = report.target(
    {
      section: SECTION,
      figure: `webhook RSS growth over ${after.requests} requests after warm-up`,
      value: rssGrowth * 100,
      unit: '%',
      target: `≤${MAX_RSS_GROWTH * 100}% growth`,
    },
    rssGrowth <= MAX_RSS_GROWTH,
  );
  if (!met) {
    report.fail(
      `webhook RSS grew ${(rssGrowth * 100).toFixed(1)}% over ${after.requests} requests (limit ${MAX_RSS_GROWTH * 100}%)`,
    );
  }

  const baselineAfter = baseline?.trail.at(-1);
  if (baselineAfter) {
    const rssRatio = after.rss / baselineAfter.rss;
    report.target(
      {
        section: SECTION,
        figure:
          `webhook RSS / bare baseline RSS after ${after.requests} requests ` +
          `(${formatNumber(mib(after.rss))} / ${formatNumber(mib(baselineAfter.rss))} MiB)`,
        value: rssRatio,
        unit: '×',
        target: `≤${MAX_RSS_VS_BASELINE}× the baseline`,
      },
      rssRatio <= MAX_RSS_VS_BASELINE,
    );
  }

  const row = (label: string, run: MemoryRun, key: keyof MemoryReading) => {
    const last = run.trail.at(-1)!;
    return [
      label,
      ...[run.cold, run.warm, last].map((r) => `${formatNumber(mib(r[key]))} MiB`),
      `${(growth(run.warm[key], last[key]) * 100).toFixed(1)}%`,
    ];
  };
  report.details.memory = { injector, baseline };
  report.table({
    title: 'Memory under typical-pod load',
    header: ['', 'Idle (fresh)', 'Idle after warm-up', `After ${after.requests} more requests`, 'Growth'],
    rows: [
      row('webhook VmRSS', injector, 'rss'),
      row('webhook V8 heap used', injector, 'heapUsed'),
      row('webhook V8 heap committed', injector, 'heapTotal'),
      ...(baseline ? [row('baseline VmRSS', baseline, 'rss')] : []),
    ],
    notes: [
      'Readings after a settle and a forced full garbage collection. Growth counts from the warmed-up idle reading, since a fresh process grows its heap ' +
        'and JIT code on first use; webhook VmRSS growth over 10% fails the bench run. The webhook count includes ' +
        'the typical-pod load of section 1; the baseline gets the same number of requests in a fresh process.',
    ],
  });
}

const growth = (from: number, to: number) => (to - from) / from;
const mib = (bytes: number) => bytes / (1024 * 1024);
