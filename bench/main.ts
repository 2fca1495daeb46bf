/**
 * `npm run bench`: how fast mesh-injector is, against baselines measured in the same run on the same machine.
 *
 * Exit status: 0 even when figures miss their targets (each miss is printed as `MISSED target …` and recorded),
 * unless the webhook's memory grows more than 10% over 100 000 requests: then 1. A section that cannot run here
 * (not root, no iptables, no control plane, the mesh-iptables bundle not built) is skipped with the reason; a section that
 * fails with an error makes the exit status 2, after the other sections have run.
 *
 * Sections: 1 webhook throughput and latency (autocannon in its own process against `mesh-injector serve` and a
 * bare Fastify baseline); 2 where the time goes (tinybench); 3 webhook memory; 4 the init program in fresh network
 * namespaces; 5 pod creation through a real kube-apiserver; 6 what a TLS handshake costs the server, by key type. Figures print as they are measured, a markdown summary
 * prints at the end, and everything goes to bench/results.json (git-ignored).
 *
 * Environment: BENCH_DURATION (seconds per load run, default 3), BENCH_ROUNDS (interleaved runs per server and load
 * cell, medians reported; default 3), BENCH_WARMUP (seconds, default 1),
 * BENCH_MEMORY_REQUESTS (default 100000), BENCH_CREATES (default 200), BENCH_INIT_REPETITIONS (default 10),
 * BENCH_MICRO_TIME (ms per micro-benchmark, default 500), BENCH_HANDSHAKES (default 200), BENCH_SECTIONS (e.g. `1,2`; default all; section 3
 * runs with section 1).
 */
import { repoPath } from '../test/harness/repo.js';
import { benchEndToEnd } from './end-to-end.js';
import { benchInitProgram } from './init-program.js';
import { benchMicro } from './micro.js';
import { benchTlsHandshakes } from './tls-handshakes.js';
import { Report } from './report.js';
import { serverRuntime } from './server-runtime.js';
import { benchWebhookThroughput } from './webhook-throughput.js';

const RESULTS_PATH = repoPath('bench', 'results.json');

function numberFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(
      `${name}=${JSON.stringify(text)} is not a positive number; unset it or give e.g. ${fallback}`,
    );
  }
  return value;
}

const settings = {
  durationSeconds: numberFromEnv('BENCH_DURATION', 3),
  rounds: Math.round(numberFromEnv('BENCH_ROUNDS', 3)),
  warmupSeconds: numberFromEnv('BENCH_WARMUP', 1),
  memoryRequests: Math.round(numberFromEnv('BENCH_MEMORY_REQUESTS', 100_000)),
  creates: Math.round(numberFromEnv('BENCH_CREATES', 200)),
  initRepetitions: Math.round(numberFromEnv('BENCH_INIT_REPETITIONS', 10)),
  microTimeMs: numberFromEnv('BENCH_MICRO_TIME', 500),
  handshakes: Math.round(numberFromEnv('BENCH_HANDSHAKES', 200)),
  concurrencies: [1, 16, 64],
  settleMs: 2_000,
  sections: (process.env.BENCH_SECTIONS || '1,2,3,4,5,6,7').split(',').map((s) => s.trim()),
};

const report = new Report();
const errors: string[] = [];
const started = process.hrtime.bigint();

async function section(number: string, run: () => Promise<void>): Promise<void> {
  if (!settings.sections.includes(number)) return;
  try {
    await run();
  } catch (error) {
    const message = `section ${number} failed: ${(error as Error).stack ?? String(error)}`;
    errors.push(message);
    console.error(`  ERROR ${message}`);
  }
}

report.details.allocator = serverRuntime().description;
console.log(`allocator of every server started: ${serverRuntime().description}`);
console.log(
  `mesh-injector bench: ${settings.rounds} runs of ${settings.durationSeconds} s per server and load cell, ` +
    `${settings.memoryRequests} requests for ` +
    `the memory check, ${settings.creates} pod creates per namespace, ${settings.initRepetitions} init repetitions`,
);
await section('1', () => benchWebhookThroughput(report, settings));
await section('2', () => benchMicro(report, settings.microTimeMs));
await section('4', () => benchInitProgram(report, settings.initRepetitions));
await section('5', () => benchEndToEnd(report, settings.creates));
await section('6', () => benchTlsHandshakes(report, settings.handshakes));
await section('7', async () =>
  (await import('./real-node.js')).benchRealNode(report, Math.round(numberFromEnv('BENCH_NODE_PODS', 10))),
);

const seconds = Number(process.hrtime.bigint() - started) / 1e9;
report.details.errors = errors;
report.details.wallSeconds = seconds;
await report.writeJson(RESULTS_PATH, settings);

console.log(`\n## Benchmark summary\n\n${report.markdown()}`);
for (const error of errors) console.log(`- **ERROR**: ${error.split('\n')[0]}`);
console.log(`\nBench ran ${seconds.toFixed(0)} s; results in ${RESULTS_PATH}`);

process.exitCode = report.failures.length > 0 ? 1 : errors.length > 0 ? 2 : 0;
