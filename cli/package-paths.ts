/** Files this package ships beside its code, found from here whether it runs from cli/ or from dist/cli/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_FILES } from '../webhook/config.js';

/** The injector configuration in manifests/config: the default for `inject` and `check`. */
export function packagedConfigDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'manifests', 'config');
    if (existsSync(join(candidate, CONFIG_FILES.template))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `no manifests/config/${CONFIG_FILES.template} above ${fileURLToPath(import.meta.url)}; pass --config DIR`,
      );
    }
    dir = parent;
  }
}
