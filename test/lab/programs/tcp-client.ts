/**
 * A lab app making outgoing calls. Each stdin line `ID HOST PORT` opens a connection to a lab server, says hello
 * and prints `ID ok VIEW` with the server's answer, or `ID error MESSAGE`. One long-lived client per pod and user
 * keeps Node's start-up time out of every connection.
 * Usage: node tcp-client.js
 */
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { CLIENT_HELLO } from '../tcp-report.js';

function call(id: string, host: string, port: number): void {
  const socket = connect({ host, port }, () => socket.write(`${CLIENT_HELLO}\n`));
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  socket.on('end', () => console.log(`${id} ok ${answer.trim()}`));
  socket.on('error', (error) =>
    console.log(`${id} error connecting to ${host} port ${port}: ${error.message}`),
  );
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [id = '', host = '', port] = line.split(' ');
  call(id, host, Number(port));
});
