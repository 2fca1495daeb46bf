/**
 * Graceful shutdown while busy: two webhook processes behind a round-robin client, as a Service with two ready
 * endpoints. One gets SIGTERM in the middle of a run. Its /readyz must fail first (so the endpoint would be
 * removed), it must keep answering what it is sent during the shutdown delay and finish what is in flight, and
 * no request may fail.
 *
 * The client models the apiserver calling a Service (see test/harness/admission-load.ts): a probe loop plays the
 * endpoints controller and takes the process out of rotation once its /readyz fails; after that it gets no new
 * connections, but idle pooled keep-alive connections to it are still reused, as the apiserver does. Why the
 * client may retry a refused connection but nothing else: a refused NEW connection fails before any byte of the
 * request is sent, kube-proxy routes a new connection to the remaining endpoints, and Go's transport retries a
 * dial error safely. A request that reached the process and then failed (a reset or a hang-up on a reused
 * keep-alive connection, a 503) is not retried by the apiserver for a POST, so any of those is a failure here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionReview, typicalPod } from './fixtures/pods.js';
import { expectInjected, runAdmissionLoad } from './harness/admission-load.js';
import { getStatus, startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

/** An upper bound: the run ends once the leaving process has exited and the other answered this many more. */
const MAX_REQUESTS = 60_000;
const AFTER_EXIT_REQUESTS = 500;
const CONCURRENCY = 32;
const SHUTDOWN_DELAY_MS = 2_000;

describe('graceful shutdown under load', () => {
  let leaving: WebhookProcess;
  let staying: WebhookProcess;
  beforeAll(async () => {
    [leaving, staying] = await Promise.all([
      startWebhookProcess({ shutdownDelayMs: SHUTDOWN_DELAY_MS }),
      startWebhookProcess(),
    ]);
  });
  afterAll(async () => {
    await leaving?.stop();
    await staying?.stop();
  });

  it('fails readiness first, finishes in-flight requests and loses none while one of two backends stops', async () => {
    let completed = 0;
    let answeredByLeaving = 0;
    const events: string[] = [];
    let exitedAt: number | undefined;
    let leavingIsEndpoint = true;
    void leaving.exited.then(() => {
      events.push('exited');
      exitedAt = completed;
    });

    const shutdown = (async () => {
      while (completed < 1_500) await new Promise((resolve) => setTimeout(resolve, 20));
      leaving.kill('SIGTERM');
      events.push('SIGTERM');
      while ((await getStatus(`${leaving.url}/readyz`, leaving.ca.cert)) === 200) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      events.push('not ready');
      leavingIsEndpoint = false;
      return answeredByLeaving;
    })();

    const result = await runAdmissionLoad({
      backends: [
        { url: leaving.url, caPem: leaving.ca.cert, ready: () => leavingIsEndpoint },
        { url: staying.url, caPem: staying.ca.cert },
      ],
      total: MAX_REQUESTS,
      // However fast the machine, the run outlasts the leaving process's shutdown delay.
      stopWhen: () => exitedAt !== undefined && completed >= exitedAt + AFTER_EXIT_REQUESTS,
      concurrency: CONCURRENCY,
      retryRefused: true,
      body: JSON.stringify(admissionReview(typicalPod())),
      check: expectInjected,
      onCompleted: (count) => (completed = count),
      onAnswered: (url) => {
        if (url === leaving.url) answeredByLeaving++;
      },
    });
    const answeredWhenNotReady = await shutdown;
    const exitCode = await leaving.exited;

    expect(result.failures).toEqual([]);
    expect(result.completed).toBeLessThan(MAX_REQUESTS);
    expect(events).toEqual(['SIGTERM', 'not ready', 'exited']);
    expect(exitCode).toBe(0);
    // It went on answering during the shutdown delay, after readiness failed.
    expect(answeredByLeaving).toBeGreaterThan(answeredWhenNotReady);
    // It stopped in the middle of the run, and the rest went to the other backend.
    expect(exitedAt).toBeLessThan(result.completed);
    expect(result.answeredBy[staying.url]).toBeGreaterThan(result.completed / 2);
    console.info(`shutdown: ${JSON.stringify({ ...result, failures: result.failures.length, exitedAt })}`);
  }, 120_000);
});
