/**
 * Property: whatever mesh-iptables accepts, its restore input consists only of lines of the shapes Istio's rules
 * have. A flag or variable value can never add a token, a line, or a quote.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSettings } from './flags.js';
import { resolveConfig } from './resolve-config.js';
import { parseIptablesSave } from './iptables-save.js';
import { buildRestoreTexts, buildRules, renderRules } from './rules.js';
import { fixedHost } from './test-support.js';

/** Options Istio's rules use, with the number of values each takes. */
const MATCH_OPTIONS: Record<string, number> = {
  '-p': 1,
  '-i': 1,
  '-o': 1,
  '-s': 1,
  '-d': 1,
  '-m': 1,
  '--dport': 1,
  '--sport': 1,
  '--dports': 1,
  '--ctstate': 1,
  '--uid-owner': 1,
  '--gid-owner': 1,
  '--mark': 1,
};
const TARGET_OPTIONS: Record<string, number> = {
  '--to-ports': 1,
  '--to-port': 1,
  '--set-mark': 1,
  '--tproxy-mark': 1,
  '--on-port': 1,
  '--zone': 1,
  '--save-mark': 0,
  '--restore-mark': 0,
};
const TARGETS = new Set(['RETURN', 'ACCEPT', 'DROP', 'REDIRECT', 'TPROXY', 'MARK', 'CONNMARK', 'CT']);
const MODULES = new Set(['owner', 'multiport', 'conntrack', 'mark', 'connmark']);
const CHAIN = /^(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING|ISTIO_[A-Z_]+)$/;
/**
 * A value token: printable ASCII without quotes or backslashes (iptables-restore's quoting), and not readable as an
 * option or a negation.
 */
const VALUE = /^(?![-!])[\x21-\x7e]+$/;
const QUOTING = /["'\\]/;

/** Throws, naming the line, unless `text` is a sequence of well-formed table blocks. */
function checkRestoreText(text: string): void {
  expect(text.endsWith('COMMIT\n')).toBe(true);
  for (const block of text.slice(0, -'COMMIT\n'.length).split('COMMIT\n')) {
    const [header, ...lines] = block.split('\n').slice(0, -1);
    expect(header).toMatch(/^\* (filter|mangle|nat|raw)$/);
    for (const line of lines) {
      if (line.startsWith('-N ')) {
        expect(line).toMatch(/^-N ISTIO_[A-Z_]+$/);
      } else {
        checkRuleLine(line);
      }
    }
  }
}

function checkRuleLine(line: string): void {
  const tokens = line.split(' ');
  const fail = (why: string) => {
    throw new Error(`${why}: ${JSON.stringify(line)}`);
  };
  const [command, chain] = tokens;
  if (!(command === '-A' || command === '-I') || !CHAIN.test(chain ?? ''))
    fail('not a rule of an Istio chain');
  let i = command === '-I' ? 3 : 2;
  if (command === '-I' && !/^[1-3]$/.test(tokens[2] ?? '')) fail('bad insert position');
  let jumps = 0;
  while (i < tokens.length) {
    if (tokens[i] === '!') i++;
    const option = tokens[i] ?? '';
    if (option === '-j') {
      jumps++;
      const target = tokens[i + 1] ?? '';
      if (!TARGETS.has(target) && !/^ISTIO_[A-Z_]+$/.test(target)) fail(`bad target ${target}`);
      i += 2;
      while (i < tokens.length) {
        const arity = TARGET_OPTIONS[tokens[i] ?? ''];
        if (arity === undefined) fail(`unexpected ${tokens[i]} after the target`);
        for (let k = 1; k <= arity!; k++) {
          const value = tokens[i + k] ?? '';
          if (!VALUE.test(value) || QUOTING.test(value)) fail('bad target value');
        }
        i += 1 + arity!;
      }
      break;
    }
    const arity = MATCH_OPTIONS[option];
    if (arity === undefined) fail(`unexpected token ${option}`);
    const value = tokens[i + 1] ?? '';
    if (!VALUE.test(value) || QUOTING.test(value)) fail(`bad value ${JSON.stringify(value)}`);
    if (option === '-m' && !MODULES.has(value)) fail(`bad module ${value}`);
    if (option === '-p' && !['tcp', 'udp'].includes(value)) fail(`bad protocol ${value}`);
    i += 2;
  }
  if (jumps !== 1) fail('not exactly one target');
  // ACCEPT and DROP appear only where Istio puts them.
  if (
    / -j (ACCEPT|DROP)$/.test(line) &&
    !['-A ISTIO_DIVERT -j ACCEPT', '-A ISTIO_DROP -j DROP'].includes(line)
  ) {
    fail('an ACCEPT or DROP Istio never writes');
  }
}

/** Characters that make up iptables-restore syntax, and a few that are harmless. */
const hostile = fc.string({
  unit: fc.constantFrom(...'a1,:/*-! \n\t"\'#%.+=_0x9'.split(''), '\r', '\u0000', 'é'),
  maxLength: 14,
});
const port = fc.integer({ min: 0, max: 65535 }).map(String);
const portOrRange = fc.oneof(
  port,
  fc.tuple(port, port).map(([a, b]) => `${Math.min(+a, +b)}:${Math.max(+a, +b)}`),
);
const list = <T extends string>(item: fc.Arbitrary<T>) =>
  fc.array(item, { maxLength: 4 }).map((items) => items.join(','));
const cidr = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, bits]) => `${ip}/${bits}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, bits]) => `${ip}/${bits}`),
);
const nic = fc.stringMatching(/^[a-z][a-z0-9._-]{0,14}$/);
const owner = fc.oneof(
  fc.integer({ min: 0, max: 70000 }).map(String),
  fc.constantFrom('istio-proxy', 'java', '_x', '10-20'),
);

/** Each flag with a mostly-valid value, or a hostile one. */
const FLAG_VALUES: Record<string, fc.Arbitrary<string>> = {
  '-p': port,
  '-z': port,
  '-e': port,
  '-u': list(owner),
  '-g': list(owner),
  '-m': fc.constantFrom('', 'REDIRECT', 'TPROXY', 'NONE'),
  '-t': fc.integer({ min: 1, max: 5000 }).map(String),
  '-r': fc.integer({ min: 1, max: 300 }).map(String),
  '-b': fc.oneof(fc.constant('*'), list(portOrRange)),
  '-d': list(portOrRange),
  '-c': list(nic),
  '-k': list(nic),
  '-i': fc.oneof(fc.constant('*'), list(cidr)),
  '-x': list(cidr),
  '-q': list(portOrRange),
  '-o': list(portOrRange),
  '--dns-servers': list(fc.oneof(fc.ipV4(), fc.ipV6())),
};
const ENV_VALUES: Record<string, fc.Arbitrary<string>> = {
  ISTIO_OUTBOUND_OWNER_GROUPS: fc.oneof(fc.constant('*'), list(owner)),
  ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: list(owner),
  ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: fc.constantFrom('127.0.0.1/32', '127.0.0.1/8', '127.1.2.3/16'),
};

/** A flag is absent, mostly valid, or (1 in 20) hostile, so that most runs reach the rule builder. */
const maybe = (value: fc.Arbitrary<string>) =>
  fc.option(fc.oneof({ weight: 19, arbitrary: value }, { weight: 1, arbitrary: hostile }), {
    nil: undefined,
  });

const invocation = fc.record({
  flags: fc.record(
    Object.fromEntries(Object.entries(FLAG_VALUES).map(([name, value]) => [name, maybe(value)])),
  ),
  env: fc.record(Object.fromEntries(Object.entries(ENV_VALUES).map(([name, value]) => [name, maybe(value)]))),
  switches: fc.subarray(['--redirect-dns', '--capture-all-dns', '--drop-invalid', '--ipv6=true']),
});

function argvOf(flags: Record<string, string | undefined>, switches: string[]): string[] {
  const argv = Object.entries(flags).flatMap(([name, value]) =>
    value === undefined ? [] : name.startsWith('--') ? [`${name}=${value}`] : [name, value],
  );
  return [...argv, ...switches, ...(switches.includes('--ipv6=true') ? [] : ['--ipv6=false'])];
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function isPrintableAscii(char: string): boolean {
  const code = char.charCodeAt(0);
  return code >= 0x20 && code < 0x7f;
}

describe('restore input safety (property)', () => {
  it('any accepted configuration gives only well-formed Istio rule lines', () => {
    let accepted = 0;
    fc.assert(
      fc.property(invocation, ({ flags, env, switches }) => {
        const parsed = parseSettings(argvOf(flags, switches), definedOnly(env));
        if (!parsed.ok) return;
        const resolved = resolveConfig(parsed.settings, fixedHost());
        if (!resolved.ok) return;
        accepted++;
        const texts = buildRestoreTexts(resolved.config);
        checkRestoreText(texts.ipv4);
        if (texts.ipv6 !== undefined) checkRestoreText(texts.ipv6);
      }),
      { numRuns: 400 },
    );
    // The generators must exercise the builder, not only the validators.
    expect(accepted).toBeGreaterThan(150);
  });

  it('the restore text is exactly the rule model: iptables-save would read it back into the same model', () => {
    // The text in iptables-save's spelling of table headers and chain declarations, read by the save parser: the
    // model the rule builder made has the same tables, chains (in order) and rules, so what apply.ts compares and
    // edits is what iptables-restore was given.
    const asSaved = (text: string) => text.replace(/^\* /gm, '*').replace(/^-N (\S+)$/gm, ':$1 - [0:0]');
    let checked = 0;
    fc.assert(
      fc.property(invocation, ({ flags, env, switches }) => {
        const parsed = parseSettings(argvOf(flags, switches), definedOnly(env));
        if (!parsed.ok) return;
        const resolved = resolveConfig(parsed.settings, fixedHost());
        if (!resolved.ok) return;
        checked++;
        const rules = buildRules(resolved.config);
        const texts = renderRules(rules);
        expect(rules.ipv4).toEqual(parseIptablesSave(asSaved(texts.ipv4), 'ipv4'));
        expect(rules.ipv6).toEqual(
          texts.ipv6 === undefined ? undefined : parseIptablesSave(asSaved(texts.ipv6), 'ipv6'),
        );
      }),
      { numRuns: 300 },
    );
    expect(checked).toBeGreaterThan(100);
  });

  it('no flag value with whitespace, a quote, a control character or non-ASCII is ever accepted', () => {
    const unsafe = hostile.filter((value) =>
      [...value].some((char) => /[\s"']/.test(char) || !isPrintableAscii(char)),
    );
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(FLAG_VALUES)), unsafe, (flag, value) => {
        const argv = flag.startsWith('--') ? [`${flag}=${value}`] : [flag, value];
        expect(parseSettings(argv, {}).ok).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('the checker itself rejects an injected token or line', () => {
    expect(() => checkRuleLine('-A PREROUTING -i eth0 -j ACCEPT -j RETURN')).toThrow();
    expect(() => checkRuleLine('-A OUTPUT -j ACCEPT')).toThrow();
    expect(() => checkRuleLine('-A ISTIO_OUTPUT -p tcp --dport 80 --jump ACCEPT')).toThrow();
    expect(() => checkRuleLine('-A ISTIO_OUTPUT -o "eth0" -j RETURN')).toThrow();
    expect(() => checkRuleLine('-A ISTIO_OUTPUT -o lo -m owner --uid-owner 1337 -j RETURN')).not.toThrow();
  });
});
