/**
 * Preloaded into the webhook process by bench section 5 (`node --import …/connection-counter.js`): counts the TCP
 * connections the process accepts, through Node's `net.server.socket` diagnostics channel, and prints the running
 * count as a JSON line on stderr (read back with connection-count.ts). Over TLS every new connection is one
 * handshake, so the count says whether the apiserver reuses its connections or pays a handshake per webhook call.
 */
import { subscribe } from 'node:diagnostics_channel';
import { connectionCountLine } from './connection-count.js';

let accepted = 0;
subscribe('net.server.socket', () => {
  accepted++;
  process.stderr.write(connectionCountLine(accepted));
});
