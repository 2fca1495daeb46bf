import { hasCommand, isRoot } from '../harness/requirements.js';
import { IPTABLES_BACKENDS } from './iptables.js';

/** What the lab needs from the machine, in the form missingRequirements() takes. */
export function labRequirements(): Record<string, boolean> {
  const iptables = IPTABLES_BACKENDS.flatMap((backend) =>
    ['iptables', 'ip6tables'].map((family) => `${family}-${backend}-restore`),
  );
  return {
    root: isRoot(),
    // iproute2: network namespaces, veths and `ss`.
    ip: hasCommand('ip') && hasCommand('ss'),
    ...Object.fromEntries(iptables.map((command) => [command, hasCommand(command)])),
    haproxy: hasCommand('haproxy'),
    // Runs the proxy and the apps under their own users.
    setpriv: hasCommand('setpriv'),
    // Compiles the IPv6 relay's original-destination reader (programs/original-destination.c).
    gcc: hasCommand('gcc'),
  };
}
