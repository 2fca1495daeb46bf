/** What `mesh-iptables --version` prints: the package's version (the bundler inlines package.json) and Node's. */
import packageJson from '../package.json' with { type: 'json' };

export const VERSION: string = packageJson.version;

export function versionText(nodeVersion: string = process.version): string {
  return `mesh-iptables ${VERSION} (Node.js ${nodeVersion})`;
}
