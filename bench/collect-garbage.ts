/**
 * Forces a full garbage collection in another Node process through its inspector (HeapProfiler.collectGarbage),
 * so that memory readings after it measure what is live, not where the collector happens to be in its cycle.
 * Run with --experimental-websocket (Node 20's WebSocket client).
 *
 * Usage: node --experimental-websocket dist/bench/collect-garbage.js ws://127.0.0.1:PORT/UUID
 */
const url = process.argv[2];
if (!url?.startsWith('ws://')) {
  console.error('usage: collect-garbage.js ws://host:port/id (the "Debugger listening on" URL)');
  process.exit(2);
}

const socket = new WebSocket(url);
const timer = setTimeout(() => {
  console.error(`no answer from ${url} within 30 s`);
  process.exit(1);
}, 30_000);
socket.addEventListener('open', () =>
  socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })),
);
socket.addEventListener('message', (event: MessageEvent) => {
  const message = JSON.parse(String(event.data)) as { id?: number; error?: { message: string } };
  if (message.id !== 1) return;
  clearTimeout(timer);
  socket.close();
  if (message.error) {
    console.error(`HeapProfiler.collectGarbage failed: ${message.error.message}`);
    process.exitCode = 1;
  }
});
socket.addEventListener('error', () => {
  console.error(`cannot connect to ${url}`);
  process.exit(1);
});
