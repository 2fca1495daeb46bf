#!/usr/bin/env node
/** The `mesh-iptables` command, a drop-in for Istio's istio-iptables; see program.ts. */
import { writeSync } from 'node:fs';
import { systemHost } from './environment.js';
import { runProgram } from './program.js';

/** Whether output went to a stream (a full pipe), which writes asynchronously: the process must wait for it. */
let streamed = false;

/**
 * Writes to stdout or stderr with write(2) itself. `process.stdout`/`process.stderr` on a pipe, as a container's
 * are, would load Node's net and stream modules first, which a dry run otherwise never needs (bench section 4). A
 * non-blocking pipe that is full makes write(2) fail with EAGAIN: the stream then takes the rest, and waits.
 */
function writeTo(fd: 1 | 2, stream: () => NodeJS.WriteStream): (text: string) => void {
  return (text) => {
    let rest = Buffer.from(text);
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      streamed = true;
      stream().write(rest);
    }
  };
}

/**
 * Exits at once when everything is written: tearing down the heap on a natural exit costs milliseconds that every
 * pod's start would wait for (more after running programs), and nothing is left to do.
 */
function exit(code: number): void {
  if (streamed) process.exitCode = code;
  else process.exit(code);
}

runProgram(process.argv.slice(2), process.env, {
  stdout: writeTo(1, () => process.stdout),
  stderr: writeTo(2, () => process.stderr),
  host: systemHost,
}).then(exit, (error: unknown) => {
  process.stderr.write(
    `mesh-iptables: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
});
