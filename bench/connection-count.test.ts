import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../test/harness/repo.js';
import { acceptedConnections, connectionCountLine } from './connection-count.js';

/** The built preload, as bench section 5 passes it to the webhook process (npm test builds first). */
const COUNTER = pathToFileURL(repoPath('dist', 'bench', 'connection-counter.js')).href;

describe('counting the connections a process accepts', () => {
  it('reads the latest count among other log lines, and 0 before any', () => {
    expect(acceptedConnections(['{"msg":"listening"}'])).toBe(0);
    const lines = [
      '{"msg":"a"}',
      connectionCountLine(1).trim(),
      '{"msg":"b"}',
      connectionCountLine(2).trim(),
    ];
    expect(acceptedConnections([...lines, '{"msg":"c"}'])).toBe(2);
  });

  it('counts each connection a preloaded process accepts, not those it opens', async () => {
    // The process opens three connections to its own server, which accepts them: 3, not 6.
    const script = `
      import { connect, createServer } from 'node:net';
      const server = createServer((s) => s.end()).listen(0, '127.0.0.1', async () => {
        for (let i = 0; i < 3; i++) {
          await new Promise((done) => connect(server.address().port, '127.0.0.1').on('close', done).resume());
        }
        server.close();
      });
    `;
    const { stderr } = await promisify(execFile)(process.execPath, [
      `--import=${COUNTER}`,
      '--input-type=module',
      '-e',
      script,
    ]);
    expect(acceptedConnections(stderr.split('\n').filter(Boolean))).toBe(3);
  });
});
