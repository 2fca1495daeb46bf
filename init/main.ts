#!/usr/bin/env node
/** The `mesh-iptables` command, a drop-in for Istio's istio-iptables; see program.ts. */
import { systemHost } from './environment.js';
import { runProgram } from './program.js';

runProgram(process.argv.slice(2), process.env, {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  host: systemHost,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `mesh-iptables: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
