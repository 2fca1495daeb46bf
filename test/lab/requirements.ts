import { hasCommand, isRoot } from '../harness/requirements.js';

/** What the lab needs from the machine, in the form missingRequirements() takes. */
export function labRequirements(): Record<string, boolean> {
  return {
    root: isRoot(),
    ip: hasCommand('ip'),
    'iptables-restore': hasCommand('iptables-restore'),
    'iptables-legacy-restore': hasCommand('iptables-legacy-restore'),
    haproxy: hasCommand('haproxy'),
    // Runs the proxy and the apps under their own users.
    setpriv: hasCommand('setpriv'),
    // The IPv6 relay reads original destinations through python3 (see programs/ipv6-relay.ts).
    python3: hasCommand('python3'),
  };
}
