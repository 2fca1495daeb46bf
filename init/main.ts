#!/usr/bin/env node
/** The `mesh-iptables` command, a drop-in for Istio's istio-iptables; see program.ts. */
import { pino } from 'pino';
import { systemHost } from './environment.js';
import { runProgram } from './program.js';

try {
  process.exitCode = await runProgram(process.argv.slice(2), process.env, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    logStream: pino.destination({ fd: 2, sync: true }),
    host: systemHost,
  });
} catch (error) {
  process.stderr.write(
    `mesh-iptables: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
}
