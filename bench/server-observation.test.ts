import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../test/harness/repo.js';
import { latestObservation, observationLine } from './server-observation.js';

/** The built preload, as bench section 5 passes it to the webhook process (npm test builds first). */
const OBSERVER = pathToFileURL(repoPath('dist', 'bench', 'server-observer.js')).href;

describe('observing a server process from a preloaded module', () => {
  it('reads the latest observation among other log lines, and zeros before any', () => {
    expect(latestObservation(['{"msg":"listening"}'])).toEqual({
      connections: 0,
      requests: 0,
      requestSeconds: 0,
    });
    const lines = [
      observationLine({ connections: 1, requests: 0, requestSeconds: 0 }).trim(),
      '{"msg":"injected"}',
      observationLine({ connections: 1, requests: 1, requestSeconds: 0.002 }).trim(),
      '{"msg":"other"}',
    ];
    expect(latestObservation(lines)).toEqual({ connections: 1, requests: 1, requestSeconds: 0.002 });
  });

  it('counts accepted connections (not opened ones) and times each answered request', async () => {
    // Three requests over one keep-alive connection, then one over a second connection; the handler takes ≥ 20 ms.
    const script = `
      import { Agent, createServer, get } from 'node:http';
      const server = createServer((req, res) => setTimeout(() => res.end('ok'), 20));
      server.listen(0, '127.0.0.1', async () => {
        const url = 'http://127.0.0.1:' + server.address().port + '/';
        const fetchWith = (agent) => new Promise((done) => get(url, { agent }, (res) => res.resume().on('end', done)));
        const kept = new Agent({ keepAlive: true, maxSockets: 1 });
        for (let i = 0; i < 3; i++) await fetchWith(kept);
        kept.destroy();
        await fetchWith(new Agent({ keepAlive: false }));
        server.close();
      });
    `;
    const { stderr } = await promisify(execFile)(process.execPath, [
      `--import=${OBSERVER}`,
      '--input-type=module',
      '-e',
      script,
    ]);
    const observation = latestObservation(stderr.split('\n').filter(Boolean));
    expect(observation.connections).toBe(2);
    expect(observation.requests).toBe(4);
    expect(observation.requestSeconds).toBeGreaterThanOrEqual(4 * 0.019);
  });
});
