/** Files this package ships beside its code, found from here whether it runs from cli/ or from dist/cli/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_FILES } from '../webhook/config.js';

/** The nearest `relative` above this module: the package's own file, in a checkout or an install. */
export function packageFile(relative: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no ${relative} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The injector configuration in manifests/config: the default for `inject` and `check`. */
export function packagedConfigDir(): string {
  try {
    return dirname(packageFile(join('manifests', 'config', CONFIG_FILES.template)));
  } catch (error) {
    throw new Error(`${(error as Error).message}; pass --config DIR`, { cause: error });
  }
}
