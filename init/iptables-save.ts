/** Reads `iptables-save` output, the kernel's rules as text, into the rule model. */
import type { IptablesState, Rule, Table } from './ruleset.js';

/**
 * Parses `iptables-save` output: `*table`, `:CHAIN POLICY [counters]` and every `-A`/`-I` line are kept; comments,
 * `COMMIT`, policies and counters are dropped. `source` names the text in errors.
 */
export function parseIptablesSave(text: string, source: string): IptablesState {
  const tables: Table[] = [];
  let current: Table | undefined;
  const declare = (chain: string) => {
    if (current !== undefined && !current.chains.includes(chain)) current.chains.push(chain);
  };
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const fail = (why: string): never => {
      throw new Error(`${source}, line ${index + 1} ("${line}"): ${why}`);
    };
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      if (!/^[a-z]+$/.test(name)) fail('not a table name');
      current = tables.find((table) => table.name === name);
      if (current === undefined) {
        current = { name, chains: [], rules: [] };
        tables.push(current);
      }
      return;
    }
    if (line === 'COMMIT') {
      if (current === undefined) fail('COMMIT outside a table');
      current = undefined;
      return;
    }
    if (current === undefined) return fail('a rule or chain outside a table (no "*table" line before it)');
    const match = /^(?::(\S+)|(-A|-I)\s+(\S+))(?:\s+(.*))?$/.exec(line);
    if (match === null) return fail('not a chain or rule line (expected :CHAIN, -A or -I)');
    const [, declared, command, chain = '', rest = ''] = match;
    if (declared !== undefined) {
      declare(declared);
      return;
    }
    const position = command === '-I' ? /^(\d+)\s+/.exec(rest) : null;
    const rule: Rule = { chain, spec: position ? rest.slice(position[0].length) : rest };
    if (command === '-I') rule.insertAt = position ? Number(position[1]) : 1;
    if (rule.spec.trim() === '') fail('a rule without matches or target');
    declare(chain);
    current.rules.push(rule);
  });
  return { tables };
}
