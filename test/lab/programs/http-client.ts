/**
 * A lab app making HTTP calls. Each stdin line `ID URL` sends a GET on a new connection and prints `ID ok BODY`
 * with the answer's body on one line, or `ID error MESSAGE`. One long-lived client per pod keeps Node's start-up
 * time out of every request.
 * Usage: node http-client.js
 */
import { get } from 'node:http';
import { createInterface } from 'node:readline';

function call(id: string, url: string): void {
  const request = get(url, { agent: false }, (response) => {
    let body = '';
    response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    response.on('end', () => {
      if (response.statusCode === 200) console.log(`${id} ok ${body.trim()}`);
      else console.log(`${id} error GET ${url}: HTTP ${response.statusCode} ${body.replace(/\s+/g, ' ')}`);
    });
  });
  request.on('error', (error) => console.log(`${id} error GET ${url}: ${error.message}`));
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [id = '', url = ''] = line.split(' ');
  call(id, url);
});
