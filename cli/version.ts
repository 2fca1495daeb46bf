/** `mesh-injector version` and `--version`: this package's version and the Node.js running it. */
import { readFileSync } from 'node:fs';
import { packageFile } from './package-paths.js';

export interface VersionInfo {
  version: string;
  node: string;
  platform: string;
}

export function versionInfo(): VersionInfo {
  const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string };
  return { version: pkg.version, node: process.version, platform: `${process.platform}/${process.arch}` };
}

export function formatVersion(info: VersionInfo): string {
  return `mesh-injector ${info.version} (Node.js ${info.node}, ${info.platform})`;
}
