/**
 * Applying capture rules to the real kernel, in fresh network namespaces, with both iptables backends: a first
 * apply, a re-run, a replace, failures part-way (a table, or the IPv6 family after IPv4 committed) and cleanup,
 * each judged by what `<x>tables-<backend>-save` prints afterwards.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN_PREFIX } from '../common/constants.js';
import {
  applyCapture,
  CaptureError,
  cleanupCapture,
  type CaptureOptions,
  type DesiredCapture,
} from '../init/apply.js';
import { runCommand, type CommandRunner } from '../init/command.js';
import {
  detectIptablesBinary,
  PROBE_INPUT,
  type IpFamily,
  type IptablesBackend,
} from '../init/iptables-binary.js';
import { describeCapture } from '../init/capture-compare.js';
import { parseIptablesSave } from '../init/iptables-save.js';
import { buildRules } from '../init/rules.js';
import { configFor, configuredRules } from '../init/test-support.js';
import { hasCommand, isRoot, missingRequirements } from './harness/requirements.js';
import { repoPath } from './harness/repo.js';

const BACKENDS: readonly IptablesBackend[] = ['nft', 'legacy'];
const FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

const missing = missingRequirements(
  {
    root: isRoot(),
    ip: hasCommand('ip'),
    ...Object.fromEntries(
      BACKENDS.flatMap((backend) =>
        ['iptables', 'ip6tables'].flatMap((base) =>
          ['', '-save', '-restore'].map((suffix) => {
            const name = `${base}-${backend}${suffix}`;
            return [name, hasCommand(name)];
          }),
        ),
      ),
    ),
  },
  'applying capture rules (network namespaces, iptables-nft and iptables-legacy)',
);

/**
 * What `node dist/mesh-iptables.cjs --dry-run --ipv6=true -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*'
 * -d 15090,15021,15020` prints: the webhook's default capture, IPv4 then IPv6.
 */
const DEFAULT_ARGS = [
  '--dry-run',
  '--ipv6=true',
  ...['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*'],
  ...['-d', '15090,15021,15020'],
];
const defaultRules = (v: { passthrough: string; loopback: string }) => `* nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s ${v.passthrough} -j RETURN
-A ISTIO_OUTPUT -o lo ! -d ${v.loopback} -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d ${v.loopback} -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d ${v.loopback} -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
`;
const DEFAULT_TEXT: Record<IpFamily, string> = {
  ipv4: defaultRules({ passthrough: '127.0.0.6/32', loopback: '127.0.0.1/32' }),
  ipv6: defaultRules({ passthrough: '::6/128', loopback: '::1/128' }),
};
/** The configured rules of restore-text fixtures, as the rule builder would give them. */
const configured = (texts: Record<IpFamily, string>): Required<DesiredCapture> => ({
  ipv4: configuredRules(texts.ipv4),
  ipv6: configuredRules(texts.ipv6),
});
const DEFAULT = configured(DEFAULT_TEXT);

/** The default capture as iptables-save prints it back (1.8.9, the same for both backends). */
const savedDefault = (v: { passthrough: string; loopback: string }) => `*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s ${v.passthrough} -o lo -j RETURN
-A ISTIO_OUTPUT ! -d ${v.loopback} -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d ${v.loopback} -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d ${v.loopback} -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT`;
const SAVED_DEFAULT: Record<IpFamily, string> = {
  ipv4: savedDefault({ passthrough: '127.0.0.6/32', loopback: '127.0.0.1/32' }),
  ipv6: savedDefault({ passthrough: '::6/128', loopback: '::1/128' }),
};

/**
 * Another configuration, with DNS capture: more chains, a chain the default lacks (ISTIO_OUTPUT_DNS) and a second
 * table (raw), so replacing it with the default must delete chains in two tables.
 */
const dnsRules = (v: { loopback: string; resolver: string }) => `* nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-N ISTIO_OUTPUT_DNS
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS
-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d ${v.resolver} -j REDIRECT --to-ports 15053
-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d ${v.resolver} -j REDIRECT --to-port 15053
-A ISTIO_OUTPUT -d ${v.loopback} -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
* raw
-N ISTIO_OUTPUT_DNS
-N ISTIO_INBOUND
-A OUTPUT -j ISTIO_OUTPUT_DNS
-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1
-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2
-A PREROUTING -j ISTIO_INBOUND
-A ISTIO_INBOUND -p udp --sport 53 -s ${v.resolver} -j CT --zone 1
COMMIT
`;
const DNS_TEXT: Record<IpFamily, string> = {
  ipv4: dnsRules({ loopback: '127.0.0.1/32', resolver: '10.96.0.10/32' }),
  ipv6: dnsRules({ loopback: '::1/128', resolver: 'fd00:10:96::a/128' }),
};
const DNS = configured(DNS_TEXT);

/**
 * The default capture plus `-c eth9`: rules in built-in chains that jump to no ISTIO_* chain, which only the kernel's
 * `-C` can find among other rules.
 */
const withExcludedInterface = (rules: string) =>
  rules.replace(
    '-N ISTIO_OUTPUT\n',
    '-N ISTIO_OUTPUT\n-A PREROUTING -i eth9 -j RETURN\n-A OUTPUT -o eth9 -j RETURN\n',
  );
const EXCLUDE_ETH9 = configured({
  ipv4: withExcludedInterface(DEFAULT_TEXT.ipv4),
  ipv6: withExcludedInterface(DEFAULT_TEXT.ipv6),
});

/** Rules a pod had before (say, from its CNI plugin), in the table the capture uses and in one it does not. */
const EARLIER_RULES = `*nat
:EARLIER - [0:0]
-A PREROUTING -j EARLIER
-A OUTPUT -p udp --dport 53 -j RETURN
-A EARLIER -p tcp --dport 7000 -m comment --comment "earlier  rule" -j RETURN
COMMIT
*raw
-A OUTPUT -p udp --dport 5353 -j NOTRACK
COMMIT
*filter
-A INPUT -p tcp --dport 7001 -j ACCEPT
COMMIT
`;

const silentLogger = pino({ level: 'silent' });

/** A logger that keeps its entries, parsed. */
function recordingLogger() {
  const entries: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => entries.push(JSON.parse(line)) });
  return { logger, entries };
}

/** The families whose final `<x>tables-save` was logged, from the entries logged since `from`. */
function finalStateFamilies(entries: readonly Record<string, unknown>[], from = 0): unknown[] {
  return entries
    .slice(from)
    .filter((entry) => entry.msg === 'iptables state at exit' && String(entry.rules).includes('*'))
    .map((entry) => entry.family);
}

/**
 * The webhook default's ports in TPROXY mode with `-c eth9`: mangle rules outside the ISTIO_* chains (CONNMARK, the
 * 1338 mark, the marked loopback RETURN) that a REDIRECT configuration does not have.
 */
const TPROXY_EXCLUDE_ETH9 = buildRules(
  configFor(['--ipv6=true', '-m', 'TPROXY', '-i', '*', '-b', '*', '-d', '15090,15021,15020', '-c', 'eth9']),
) as Required<DesiredCapture>;
const NETNS_PREFIX = `mi-apply-${process.pid}-`;
/** Marks a recorded command that was a backend probe (its input is the probe's test rule). */
const PROBED = ' (probe)';

/** A fresh network namespace; the real command runner, entered into it with `ip netns exec`. */
class Namespace {
  /** Every command this namespace's runner ran, as `file args...`. */
  readonly commands: string[] = [];

  private constructor(readonly name: string) {}

  static async create(role: string): Promise<Namespace> {
    const name = `${NETNS_PREFIX}${Namespace.count++}-${role}`.slice(0, 60);
    await expectOk(runCommand('ip', ['netns', 'add', name]));
    Namespace.created.push(name);
    return new Namespace(name);
  }

  static count = 0;
  static readonly created: string[] = [];

  /** Runs commands in the namespace; with `pathFirst`, that directory is searched first for programs. */
  runner(pathFirst?: string): CommandRunner {
    const env = pathFirst === undefined ? [] : ['env', `PATH=${pathFirst}:${process.env.PATH ?? ''}`];
    return (file, args, options) => {
      this.commands.push([file, ...args].join(' ') + (options?.input === PROBE_INPUT ? PROBED : ''));
      return runCommand('ip', ['netns', 'exec', this.name, ...env, file, ...args], options);
    };
  }

  options(backend: IptablesBackend, more: Partial<CaptureOptions> = {}): CaptureOptions {
    return {
      forceBinary: backend,
      reconcile: true,
      forceApply: false,
      logger: silentLogger,
      run: this.runner(),
      ...more,
    };
  }

  async restore(backend: IptablesBackend, family: IpFamily, text: string): Promise<void> {
    await expectOk(
      runCommand('ip', ['netns', 'exec', this.name, binary(family, backend, '-restore'), '--noflush'], {
        input: text,
      }),
    );
  }

  /** One family's rules as iptables-save prints them, without comments (timestamps) and chain counters. */
  async save(backend: IptablesBackend, family: IpFamily): Promise<string> {
    const { stdout } = await expectOk(
      runCommand('ip', ['netns', 'exec', this.name, binary(family, backend, '-save')]),
    );
    return stdout
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.replace(/ \[\d+:\d+\]$/, ''))
      .join('\n');
  }

  async saveBoth(backend: IptablesBackend): Promise<Record<IpFamily, string>> {
    return { ipv4: await this.save(backend, 'ipv4'), ipv6: await this.save(backend, 'ipv6') };
  }

  /** The capture part of a family's rules, in save format. */
  async capture(backend: IptablesBackend, family: IpFamily): Promise<string> {
    return describeCapture(parseIptablesSave(await this.save(backend, family), 'save'));
  }

  /** The restores that applied, replaced, removed or rolled back rules: all but the backend probes. */
  restores(): string[] {
    return this.commands.filter(
      (command) => /^ip6?tables-\w+-restore /.test(command) && !command.endsWith(PROBED),
    );
  }
}

function binary(family: IpFamily, backend: IptablesBackend, suffix = ''): string {
  return `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-${backend}${suffix}`;
}

async function expectOk(result: ReturnType<CommandRunner>) {
  const done = await result;
  if (done.exitCode !== 0) throw new Error(`command failed (exit ${done.exitCode}): ${done.stderr}`);
  return done;
}

/** A directory whose `ip6tables-<backend>-restore` reads its input and fails, as a kernel refusing the rules would. */
function failingIpv6Restore(backend: IptablesBackend): string {
  const dir = mkdtempSync(join(tmpdir(), 'mi-apply-shim-'));
  const name = binary('ipv6', backend, '-restore');
  const real = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  const file = join(dir, name);
  // The backend probe on its own (its test rule added and deleted in one restore) still reaches the real binary;
  // a restore of rules fails, also when the probe leads it.
  writeFileSync(
    file,
    '#!/bin/sh\ninput=$(cat)\n' +
      `case "$input" in '${PROBE_INPUT.trimEnd()}') printf '%s\\n' "$input" | ${real} "$@"; exit $? ;; esac\n` +
      'echo "ip6tables-restore: line 2 failed: injected failure" >&2\nexit 1\n',
  );
  chmodSync(file, 0o755);
  shims.push(dir);
  return dir;
}
const shims: string[] = [];

/** Namespaces left by a test process that was killed before its cleanup ran. */
function removeNamespacesOfEndedProcesses(): void {
  for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = /^mi-apply-(\d+)-/.exec(name)?.[1];
    if (pid === undefined) continue;
    try {
      process.kill(Number(pid), 0);
    } catch {
      execFileSync('ip', ['netns', 'delete', name]);
    }
  }
}

describe.skipIf(missing.length > 0)('applying capture rules in network namespaces', () => {
  beforeAll(() => removeNamespacesOfEndedProcesses());
  afterAll(() => {
    for (const name of Namespace.created.splice(0)) execFileSync('ip', ['netns', 'delete', name]);
    for (const dir of shims.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('the fixture is what mesh-iptables --dry-run prints for the webhook default arguments', async () => {
    const run = await runCommand('node', [repoPath('dist/mesh-iptables.cjs'), ...DEFAULT_ARGS]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(DEFAULT_TEXT.ipv4 + DEFAULT_TEXT.ipv6);
  });

  describe.each(BACKENDS)('with iptables-%s', (backend) => {
    /** A namespace holding EARLIER_RULES in both families, and its rules at that point. */
    async function namespaceWithEarlierRules(role: string) {
      const ns = await Namespace.create(role);
      for (const family of FAMILIES) await ns.restore(backend, family, EARLIER_RULES);
      return { ns, before: await ns.saveBoth(backend) };
    }

    it('applies the rules with one restore per family, next to the rules already there', async () => {
      const { ns, before } = await namespaceWithEarlierRules('apply');
      await expect(applyCapture(DEFAULT, ns.options(backend))).resolves.toEqual({ kind: 'applied' });

      expect(ns.restores()).toEqual([
        `iptables-${backend}-restore --noflush${backend === 'legacy' ? ' --wait=30' : ''}`,
        `ip6tables-${backend}-restore --noflush${backend === 'legacy' ? ' --wait=30' : ''}`,
      ]);
      for (const family of FAMILIES) {
        expect(await ns.capture(backend, family)).toBe(SAVED_DEFAULT[family]);
        const after = await ns.save(backend, family);
        expect(after).toContain(
          '-A EARLIER -p tcp -m tcp --dport 7000 -m comment --comment "earlier  rule" -j RETURN',
        );
        expect(withoutCaptureLines(after)).toBe(before[family]);
      }
    });

    it('a second apply of the same rules changes nothing', async () => {
      const { ns } = await namespaceWithEarlierRules('rerun');
      await applyCapture(DEFAULT, ns.options(backend));
      const applied = await ns.saveBoth(backend);
      const restoresBefore = ns.restores().length;
      const commandsBefore = ns.commands.length;

      await expect(applyCapture(DEFAULT, ns.options(backend))).resolves.toEqual({ kind: 'unchanged' });
      expect(ns.restores()).toHaveLength(restoresBefore);
      expect(await ns.saveBoth(backend)).toEqual(applied);

      // The kernel is asked with -C only about the rules iptables-save prints differently from how they are written.
      const lock = backend === 'legacy' ? ' --wait=30' : '';
      const printedDifferently = FAMILIES.flatMap((family) => {
        const saved = SAVED_DEFAULT[family].split('\n');
        return DEFAULT_TEXT[family]
          .split('\n')
          .filter((line) => line.startsWith('-A ') && !saved.includes(line))
          .map((line) => `${binary(family, backend)} -t nat -C ${line.slice('-A '.length)}${lock}`);
      });
      const checks = ns.commands.slice(commandsBefore).filter((command) => command.includes(' -C '));
      expect(printedDifferently.length).toBeGreaterThan(0);
      expect(checks.sort()).toEqual(printedDifferently.sort());
    });

    it('different rules are replaced in one restore per family, leaving only the new rules', async () => {
      const { ns } = await namespaceWithEarlierRules('replace');
      await applyCapture(DNS, ns.options(backend));
      expect(await ns.capture(backend, 'ipv4')).toContain('*raw\n:ISTIO_INBOUND - [0:0]\n:ISTIO_OUTPUT_DNS');
      const restoresBefore = ns.restores().length;

      const outcome = await applyCapture(DEFAULT, ns.options(backend));
      expect(outcome.kind).toBe('replaced');
      expect(outcome.kind === 'replaced' && outcome.previous).toContain(
        '-A ISTIO_OUTPUT_DNS -d 10.96.0.10/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
      );
      expect(ns.restores()).toHaveLength(restoresBefore + 2);

      // Exactly what a first apply of the new rules gives in a namespace that never had the old ones.
      const { ns: fresh } = await namespaceWithEarlierRules('fresh');
      await applyCapture(DEFAULT, fresh.options(backend));
      expect(await ns.saveBoth(backend)).toEqual(await fresh.saveBoth(backend));
      for (const family of FAMILIES) expect(await ns.capture(backend, family)).toBe(SAVED_DEFAULT[family]);
    });

    it('with reconcile off, different rules fail on the existing chains as in Istio, and the old rules stay', async () => {
      const { ns } = await namespaceWithEarlierRules('noreconcile');
      await applyCapture(DNS, ns.options(backend));
      const applied = await ns.saveBoth(backend);

      const error = await applyCapture(DEFAULT, ns.options(backend, { reconcile: false })).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CaptureError);
      const message = (error as Error).message;
      expect(message).toMatch(
        /^ipv4: iptables-\w+-restore --noflush.* failed in table nat at line \d+ \("-N ISTIO_/,
      );
      expect(message).toContain('reconcile is off');
      expect(message).toContain('fix: run with reconcile on');
      expect(await ns.saveBoth(backend)).toEqual(applied);
    });

    it('a failure in the IPv6 apply removes the committed IPv4 rules again: no ISTIO_* chain anywhere', async () => {
      const { ns, before } = await namespaceWithEarlierRules('v6fail');
      const options = ns.options(backend, { run: ns.runner(failingIpv6Restore(backend)) });

      const error = await applyCapture(DEFAULT, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CaptureError);
      const message = (error as Error).message;
      expect(message).toContain(`ipv6: ip6tables-${backend}-restore --noflush`);
      expect(message).toContain('injected failure');
      expect(message).toContain(
        'The rules were rolled back: ipv4 and ipv6 are as before this run, with no ISTIO_* chain and no jump to one.',
      );
      // IPv4 applied, IPv6 failed, IPv4 rolled back.
      expect(ns.restores().map((command) => command.split(' ')[0])).toEqual([
        binary('ipv4', backend, '-restore'),
        binary('ipv6', backend, '-restore'),
        binary('ipv4', backend, '-restore'),
      ]);
      const after = await ns.saveBoth(backend);
      expect(after.ipv4).not.toContain(CHAIN_PREFIX);
      expect(after.ipv6).not.toContain(CHAIN_PREFIX);
      expect(after).toEqual(before);
    });

    it('a failure in the IPv6 replace puts the previous rules of both families back', async () => {
      const { ns } = await namespaceWithEarlierRules('v6replace');
      await applyCapture(DNS, ns.options(backend));
      const applied = await ns.saveBoth(backend);

      const options = ns.options(backend, { run: ns.runner(failingIpv6Restore(backend)) });
      await expect(applyCapture(DEFAULT, options)).rejects.toThrow(
        'The rules were rolled back: ipv4 and ipv6 are as before this run.',
      );
      expect(await ns.saveBoth(backend)).toEqual(applied);
    });

    it('a failure in a later table removes the tables committed before it', async () => {
      const { ns, before } = await namespaceWithEarlierRules('tablefail');
      const broken = configuredRules(DNS_TEXT.ipv4.replace('-j CT --zone 2', '-j CT --zone two'));

      const error = await applyCapture({ ipv4: broken }, ns.options(backend)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CaptureError);
      expect((error as Error).message).toMatch(
        /^ipv4: iptables-\w+-restore .*failed in table raw at line \d+ \(".*--zone two"\) \(exit \d+\): .+/,
      );
      expect((error as Error).message).toContain('rolled back');
      // The nat table was committed before raw failed, so it took a second restore to take it back.
      expect(ns.restores()).toHaveLength(2);
      expect(await ns.saveBoth(backend)).toEqual(before);
    });

    it('cleanup removes every rule the configuration added and leaves the earlier rules exactly as they were', async () => {
      const { ns, before } = await namespaceWithEarlierRules('cleanup');
      await applyCapture(DEFAULT, ns.options(backend));
      await cleanupCapture(DEFAULT, ns.options(backend));
      expect(await ns.saveBoth(backend)).toEqual(before);

      // Also from another configuration's rules, in two tables: cleanup removes every ISTIO_* chain it finds.
      await applyCapture(DNS, ns.options(backend));
      await cleanupCapture(DEFAULT, ns.options(backend));
      expect(await ns.saveBoth(backend)).toEqual(before);
    });

    it('rules in built-in chains without a jump are recognised on a re-run and removed by cleanup', async () => {
      const { ns, before } = await namespaceWithEarlierRules('builtin');
      await applyCapture(EXCLUDE_ETH9, ns.options(backend));
      const applied = await ns.saveBoth(backend);
      expect(applied.ipv4).toContain('-A PREROUTING -i eth9 -j RETURN');

      await expect(applyCapture(EXCLUDE_ETH9, ns.options(backend))).resolves.toEqual({ kind: 'unchanged' });
      await expect(
        applyCapture(EXCLUDE_ETH9, ns.options(backend, { forceApply: true })),
      ).resolves.toMatchObject({
        kind: 'replaced',
      });
      // Rewritten in place, not doubled.
      expect(await ns.saveBoth(backend)).toEqual(applied);

      await cleanupCapture(EXCLUDE_ETH9, ns.options(backend));
      expect(await ns.saveBoth(backend)).toEqual(before);
    });

    it('with forceApply and reconcile off, rules in place make the apply fail as in Istio, changing nothing', async () => {
      const { ns } = await namespaceWithEarlierRules('force');
      await applyCapture(DEFAULT, ns.options(backend));
      const applied = await ns.saveBoth(backend);
      await expect(
        applyCapture(DEFAULT, ns.options(backend, { forceApply: true, reconcile: false })),
      ).rejects.toThrow(/failed in table nat at line 2 \("-N ISTIO_INBOUND"\)/);
      expect(await ns.saveBoth(backend)).toEqual(applied);
    });

    // Seven runs, dozens of iptables processes: more than the default 30 s on a loaded 2-core machine.
    it('every run logs the final iptables-save of each configured family, whatever its outcome', async () => {
      const { ns } = await namespaceWithEarlierRules('finalstate');
      const { logger, entries } = recordingLogger();
      const both = ['ipv4', 'ipv6'];
      const step = async (what: string, action: () => Promise<unknown>) => {
        const from = entries.length;
        await action().catch(() => undefined);
        expect(finalStateFamilies(entries, from), what).toEqual(both);
      };
      await step('applied', () => applyCapture(DEFAULT, ns.options(backend, { logger })));
      await step('unchanged', () => applyCapture(DEFAULT, ns.options(backend, { logger })));
      await step('replaced', () => applyCapture(DNS, ns.options(backend, { logger })));
      await step('failed without reconcile', () =>
        applyCapture(DEFAULT, ns.options(backend, { logger, reconcile: false })),
      );
      await step('rolled back', () =>
        applyCapture(DEFAULT, ns.options(backend, { logger, run: ns.runner(failingIpv6Restore(backend)) })),
      );
      await step('cleanup', () => cleanupCapture(DEFAULT, ns.options(backend, { logger })));
      const from = entries.length;
      await applyCapture({ ipv4: DEFAULT.ipv4 }, ns.options(backend, { logger }));
      expect(finalStateFamilies(entries, from), 'IPv4 only').toEqual(['ipv4']);
    }, 120_000);

    it('a failing last step (the routes) rolls the rules back, and the error says so', async () => {
      const { ns, before } = await namespaceWithEarlierRules('laststep');
      const lastStep = () =>
        Promise.reject(new Error('failed to configure routes: ip -6 addr replace: injected'));
      const error = await applyCapture(DEFAULT, ns.options(backend, { lastStep })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CaptureError);
      expect((error as Error).message).toBe(
        'failed to configure routes: ip -6 addr replace: injected\n' +
          'The rules were rolled back: ipv4 and ipv6 are as before this run, with no ISTIO_* chain and no jump to one.',
      );
      expect(await ns.saveBoth(backend)).toEqual(before);

      // With the rules already in place, nothing was changed, so nothing is undone and the rules stay.
      await applyCapture(DEFAULT, ns.options(backend));
      const applied = await ns.saveBoth(backend);
      await expect(applyCapture(DEFAULT, ns.options(backend, { lastStep }))).rejects.toThrow(
        'The capture rules in place before this run were not changed.',
      );
      expect(await ns.saveBoth(backend)).toEqual(applied);
    });

    it('mesh-iptables exits 1 when the routes fail, and no ISTIO_* rule is left in either family', async () => {
      const ns = await Namespace.create('routes');
      // With IPv6 off on lo, `ip -6 addr replace ::6/128 dev lo` fails after the rules were applied.
      await expectOk(
        runCommand('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', 'net.ipv6.conf.lo.disable_ipv6=1']),
      );
      const args = DEFAULT_ARGS.filter((arg) => arg !== '--dry-run');
      const result = await runCommand('ip', [
        ...['netns', 'exec', ns.name, 'node', repoPath('dist/mesh-iptables.cjs'), ...args],
        `--force-iptables-binary=${backend}`,
        '--log_as_json',
      ]);
      expect(result.exitCode, result.stderr).toBe(1);
      expect(result.stderr).toContain(
        'mesh-iptables: failed to configure routes: ip -6 addr replace ::6/128 dev lo',
      );
      expect(result.stderr).toContain(
        'The rules were rolled back: ipv4 and ipv6 are as before this run, with no ISTIO_* chain and no jump to one.',
      );
      const after = await ns.saveBoth(backend);
      expect(after.ipv4).not.toContain(CHAIN_PREFIX);
      expect(after.ipv6).not.toContain(CHAIN_PREFIX);
      // The final state is logged for both families on this path too.
      const logged = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(finalStateFamilies(logged)).toEqual(['ipv4', 'ipv6']);
    });

    it("replacing TPROXY rules with REDIRECT ones removes TPROXY's mangle rules and reports the -c leftovers", async () => {
      const { ns } = await namespaceWithEarlierRules('tproxy');
      await applyCapture(TPROXY_EXCLUDE_ETH9, ns.options(backend));
      expect((await ns.saveBoth(backend)).ipv4).toContain('CONNMARK --save-mark');
      const { logger, entries } = recordingLogger();

      await expect(applyCapture(DEFAULT, ns.options(backend, { logger }))).resolves.toMatchObject({
        kind: 'replaced',
      });
      const { ns: fresh } = await namespaceWithEarlierRules('tproxyfresh');
      await applyCapture(DEFAULT, fresh.options(backend));
      const eth9 = (line: string) => / -[io] eth9 -j RETURN$/.test(line);
      const ruleLines = (saved: string) => saved.split('\n').filter((line) => line.startsWith('-A '));
      for (const family of FAMILIES) {
        const saved = await ns.save(backend, family);
        expect(await ns.capture(backend, family)).toBe(SAVED_DEFAULT[family]);
        expect(saved).not.toMatch(/CONNMARK|MARK --set|--mark/);
        // The -c rules might be anyone's: they stay, in nat and mangle, and nothing else differs from a fresh apply.
        expect(ruleLines(saved).filter(eth9)).toEqual([
          '-A PREROUTING -i eth9 -j RETURN',
          '-A OUTPUT -o eth9 -j RETURN',
          '-A PREROUTING -i eth9 -j RETURN',
          '-A OUTPUT -o eth9 -j RETURN',
        ]);
        expect(ruleLines(saved).filter((line) => !eth9(line))).toEqual(
          ruleLines(await fresh.save(backend, family)),
        );
      }
      const warnings = entries.filter(
        (entry) => entry.level === 40 && String(entry.msg).startsWith('interface RETURN'),
      );
      expect(warnings.map((entry) => entry.rules)).toEqual(
        FAMILIES.map(() => [
          '-t mangle -A PREROUTING -i eth9 -j RETURN',
          '-t mangle -A OUTPUT -o eth9 -j RETURN',
          '-t nat -A PREROUTING -i eth9 -j RETURN',
          '-t nat -A OUTPUT -o eth9 -j RETURN',
        ]),
      );
    });

    it('rules applied in one network namespace are not seen in another', async () => {
      const one = await Namespace.create('one');
      const other = await Namespace.create('other');
      await applyCapture(DEFAULT, one.options(backend));
      expect(await one.capture(backend, 'ipv4')).toBe(SAVED_DEFAULT.ipv4);
      for (const family of FAMILIES) expect(await other.save(backend, family)).not.toContain(CHAIN_PREFIX);
    });
  });

  describe('choosing the binaries without FORCE_IPTABLES_BINARY', () => {
    it('picks nft in a fresh namespace, and still nft on the next run after applying there', async () => {
      const ns = await Namespace.create('detect');
      for (const family of FAMILIES) {
        expect((await detectIptablesBinary(family, undefined, ns.runner())).binary.command).toBe(
          binary(family, 'nft'),
        );
      }
      await applyCapture(DEFAULT, {
        reconcile: true,
        forceApply: false,
        logger: silentLogger,
        run: ns.runner(),
      });
      expect(await ns.capture('nft', 'ipv4')).toBe(SAVED_DEFAULT.ipv4);
      for (const family of FAMILIES) {
        expect((await detectIptablesBinary(family, undefined, ns.runner())).binary.command).toBe(
          binary(family, 'nft'),
        );
      }
    });

    it('picks legacy for a family whose legacy tables hold rules, per family', async () => {
      const ns = await Namespace.create('legacy');
      await ns.restore('legacy', 'ipv4', EARLIER_RULES);
      const { binary: ipv4 } = await detectIptablesBinary('ipv4', undefined, ns.runner());
      expect(ipv4).toMatchObject({ command: 'iptables-legacy', backend: 'legacy', lockArgs: ['--wait=30'] });
      const { binary: ipv6 } = await detectIptablesBinary('ipv6', undefined, ns.runner());
      expect(ipv6).toMatchObject({ command: 'ip6tables-nft', backend: 'nft', lockArgs: [] });
    });
  });
});

/** Save output without the capture chains and the jumps into them. */
function withoutCaptureLines(saved: string): string {
  return saved
    .split('\n')
    .filter((line) => !line.startsWith(`:${CHAIN_PREFIX}`) && !line.includes(CHAIN_PREFIX))
    .join('\n');
}
