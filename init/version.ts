/**
 * What `mesh-iptables --version` prints: the package's version and Node's. The bundle has the version inlined by
 * esbuild (`--define:MESH_IPTABLES_VERSION`, from npm's npm_package_version when `npm run build` runs); from
 * source (tests) it is read from package.json.
 */
import { readFileSync } from 'node:fs';

declare const MESH_IPTABLES_VERSION: string | undefined;

function packageVersion(): string {
  const packageJson = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(packageJson) as { version: string }).version;
}

export const VERSION: string =
  typeof MESH_IPTABLES_VERSION === 'string' ? MESH_IPTABLES_VERSION : packageVersion();

export function versionText(nodeVersion: string = process.version): string {
  return `mesh-iptables ${VERSION} (Node.js ${nodeVersion})`;
}
