/**
 * `mesh-injector inject`: offline injection of a manifest file or stdin, like `istioctl kube-inject`. The injected
 * stream goes to stdout only when every object could be injected or passed through; skips, warnings and errors go
 * to stderr.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { parseConfig, readConfigFiles, type ConfigFiles } from '../webhook/config.js';
import { injectManifests, type Diagnostic } from './inject-manifests.js';
import { packagedConfigDir } from './package-paths.js';

export interface InjectOptions {
  /** A file, or `-` for stdin. */
  file: string;
  config?: string;
  revision?: string;
}

export interface Output {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Returns the exit code. */
export async function runInject(
  options: InjectOptions,
  output: Output,
  stdin: () => Promise<string>,
): Promise<number> {
  const dir = options.config ?? packagedConfigDir();
  let files: ConfigFiles;
  try {
    files = await readConfigFiles(dir);
  } catch (error) {
    output.stderr(
      `error: cannot read the injector configuration: ${(error as Error).message}; fix: pass --config DIR\n`,
    );
    return 1;
  }
  let text: string;
  try {
    text = options.file === '-' ? await stdin() : await readFile(options.file, 'utf8');
  } catch (error) {
    output.stderr(`error: cannot read ${options.file}: ${(error as Error).message}\n`);
    return 1;
  }
  let context;
  try {
    const config = parseConfig(withRevision(files, options.revision));
    // Offline there is no cluster to ask, so "auto" means the classic layout, as in istioctl kube-inject.
    context = { ...config, nativeSidecars: config.values.nativeSidecars === 'true' };
  } catch (error) {
    const flag = options.revision === undefined ? '' : ` with --revision ${JSON.stringify(options.revision)}`;
    output.stderr(
      `error: the injector configuration in ${dir}${flag} does not load: ${(error as Error).message}\n`,
    );
    return 1;
  }

  const result = injectManifests(text, context);
  for (const diagnostic of result.diagnostics) output.stderr(formatDiagnostic(diagnostic, options.file));
  if (!result.ok) return 1;
  output.stdout(result.text);
  return 0;
}

export function formatDiagnostic(diagnostic: Diagnostic, file: string): string {
  const source = file === '-' ? 'stdin' : file;
  return `${diagnostic.severity}: ${source}: ${diagnostic.object}: ${diagnostic.message}\n`;
}

/** --revision replaces values.revision; the values' own validation then checks it. */
function withRevision(files: ConfigFiles, revision: string | undefined): ConfigFiles {
  if (revision === undefined) return files;
  const values = parseDocument(files.valuesText ?? '{}');
  values.set('revision', revision);
  return { ...files, valuesText: values.toString() };
}
