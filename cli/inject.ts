/**
 * `mesh-injector inject`, as istioctl kube-inject users know it: manifests from files, directories or stdin, the
 * injected stream to stdout or -o FILE, and one line per object on stderr (injected, skipped with the reason, or
 * denied with the message). The configuration is the cluster's, as the webhook there uses it, unless --offline,
 * --config or --profile says otherwise or no cluster answers; stderr says which was used.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';
import {
  CONFIG_FILES,
  hasIstioInputs,
  NO_ISTIO_INPUTS,
  parseConfig,
  readConfigFiles,
  type ConfigFiles,
} from '../webhook/config.js';
import type { IstioSourceNames, IstioTexts } from '../webhook/istio-inputs.js';
import { withImageOverrides, type ImageOverrides } from '../webhook/image-overrides.js';
import { injectManifests, type Diagnostic } from './inject-manifests.js';
import type { InjectFlagOptions } from './inject-options.js';
import type { InstalledConfig } from './installed-config.js';
import { packagedConfigDir, packageFile } from './package-paths.js';

/** The command's flags (cli/inject-options.ts) and the manifests: files, directories (walked for *.yaml, *.yml,
 * *.json) or `-` for stdin. Istio's --valuesFile, --meshConfigFile and --injectConfigFile take Istio's formats, each
 * replacing that input of the configuration (the istiod profile by default). */
export interface InjectOptions extends InjectFlagOptions {
  files: string[];
}

export interface InjectIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
  /** The cluster's installed configuration; throws with the reason when there is none to read. */
  installedConfig: () => Promise<{ config: InstalledConfig; where: string }>;
}

interface ResolvedConfig {
  files: ConfigFiles;
  images: ImageOverrides;
  /** For the stderr line and for errors: where the configuration came from. */
  source: string;
}

/** Returns the exit code. */
export async function runInject(options: InjectOptions, io: InjectIo): Promise<number> {
  const fail = (message: string) => {
    io.stderr(`error: ${message}\n`);
    return 1;
  };
  let resolved: ResolvedConfig;
  try {
    resolved = await resolveConfig(options, io);
  } catch (error) {
    return fail(`cannot read the injector configuration: ${(error as Error).message}`);
  }
  let context;
  try {
    const files = withRevision(withImageOverrides(resolved.files, resolved.images), options.revision);
    const config = parseConfig(files);
    // Offline there is no node to ask, so "auto" means the classic layout, as in istioctl kube-inject.
    context = { ...config, nativeSidecars: config.values.nativeSidecars === 'true' };
  } catch (error) {
    const flag = options.revision === undefined ? '' : ` with --revision ${JSON.stringify(options.revision)}`;
    return fail(
      `the injector configuration (${resolved.source})${flag} does not load: ${(error as Error).message}`,
    );
  }
  io.stderr(`config: ${resolved.source}\n`);

  let inputs: Input[];
  try {
    inputs = await readInputs(options.files, io.stdin);
  } catch (error) {
    return fail((error as Error).message);
  }

  const outputs: string[] = [];
  let ok = true;
  for (const input of inputs) {
    const result = injectManifests(input.text, context);
    const lines = result.diagnostics.map((diagnostic) => formatDiagnostic(diagnostic, input.name));
    if (result.ok) {
      for (const object of injectedObjects(input.text, result.text))
        lines.push(`injected: ${input.name}: ${object}\n`);
      outputs.push(result.text);
    } else ok = false;
    for (const line of inDocumentOrder(lines)) io.stderr(line);
  }
  if (!ok) return 1;
  const text = joinStreams(outputs);
  if (options.output === undefined) {
    io.stdout(text);
    return 0;
  }
  try {
    await writeFile(options.output, text);
  } catch (error) {
    return fail(`cannot write ${options.output}: ${(error as Error).message}`);
  }
  return 0;
}

/** Lines about objects sorted by their document (and item), so the summary reads like the stream; stable. */
function inDocumentOrder(lines: string[]): string[] {
  const position = (line: string) => {
    const match = /\(document (\d+)(?:, item (\d+))?/.exec(line);
    return match ? Number(match[1]) * 1e6 + Number(match[2] ?? 0) : Number.MAX_SAFE_INTEGER;
  };
  return lines
    .map((line, index) => ({ line, index, at: position(line) }))
    .sort((a, b) => a.at - b.at || a.index - b.index)
    .map(({ line }) => line);
}

export function formatDiagnostic(diagnostic: Diagnostic, source: string): string {
  return `${diagnostic.severity}: ${source}: ${diagnostic.object}: ${diagnostic.message}\n`;
}

async function resolveConfig(options: InjectOptions, io: InjectIo): Promise<ResolvedConfig> {
  const istioFlags = ISTIO_FLAGS.filter(({ option }) => options[option] !== undefined);
  let base: ResolvedConfig;
  if (options.config !== undefined) {
    base = {
      files: await readConfigFiles(options.config),
      images: {},
      source: `${options.config} (--config)`,
    };
  } else if (options.profile !== undefined || istioFlags.length > 0) {
    // Istio's files describe Istio's injection: without a configuration named, they go with the istiod profile.
    const name = options.profile ?? ISTIOD_PROFILE;
    const dir = profileDir(name);
    base = { files: await readConfigFiles(dir), images: {}, source: `profile ${name} (${dir})` };
  } else if (options.offline) {
    base = await packaged('--offline');
  } else {
    try {
      const { config, where } = await io.installedConfig();
      base = { ...config, source: `the cluster's, ${where}` };
    } catch (error) {
      base = await packaged(`no installed configuration: ${(error as Error).message}`);
    }
  }
  if (istioFlags.length === 0) return base;
  if (!hasIstioInputs(base.files.istio ?? NO_ISTIO_INPUTS)) {
    throw new Error(
      `${istioFlags.map(({ flag }) => flag).join(', ')} take Istio's formats, which only a configuration with ` +
        `Istio's inputs reads (${base.source} has none; use --profile ${ISTIOD_PROFILE})`,
    );
  }
  const istio: IstioTexts = { ...(base.files.istio ?? NO_ISTIO_INPUTS) };
  const sources: IstioSourceNames = {
    values: CONFIG_FILES.istioValues,
    injectConfig: CONFIG_FILES.istioConfig,
    mesh: CONFIG_FILES.istioMesh,
  };
  for (const { option, flag, input } of istioFlags) {
    const file = options[option]!;
    istio[input] = await readFile(file, 'utf8');
    sources[input] = `${flag} ${file}`;
  }
  return {
    files: { ...base.files, istio, istioSources: sources },
    images: base.images,
    source: `${base.source}, with ${istioFlags.map(({ option, flag }) => `${flag} ${options[option]}`).join(', ')}`,
  };
}

const ISTIOD_PROFILE = 'istiod';

/** istioctl kube-inject's flags for Istio's own inputs, each replacing that input of the configuration. */
const ISTIO_FLAGS = [
  { option: 'injectConfigFile', flag: '--injectConfigFile', input: 'injectConfig' },
  { option: 'valuesFile', flag: '--valuesFile', input: 'values' },
  { option: 'meshConfigFile', flag: '--meshConfigFile', input: 'mesh' },
] as const;

async function packaged(why: string): Promise<ResolvedConfig> {
  const dir = packagedConfigDir();
  return { files: await readConfigFiles(dir), images: {}, source: `the packaged ${dir} (${why})` };
}

function profileDir(name: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
    throw new Error(`--profile ${JSON.stringify(name)} is not a profile name`);
  for (const candidate of [
    join('manifests', 'profiles', name, 'config'),
    join('manifests', 'profiles', name),
  ]) {
    try {
      return packageFile(join(candidate, CONFIG_FILES.template)).slice(0, -CONFIG_FILES.template.length - 1);
    } catch {
      // next candidate
    }
  }
  throw new Error(`no profile ${JSON.stringify(name)} in this package (manifests/profiles/${name})`);
}

interface Input {
  /** For diagnostics: the path, or `stdin`. */
  name: string;
  text: string;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Every -f in order; a directory contributes its manifests, walked recursively in name order. */
async function readInputs(paths: string[], stdin: () => Promise<string>): Promise<Input[]> {
  const inputs: Input[] = [];
  for (const path of paths) {
    if (path === '-') {
      inputs.push({ name: 'stdin', text: await stdin() });
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (error) {
      throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
    const files = isDirectory
      ? (await readdir(path, { recursive: true }))
          .filter((entry) => MANIFEST_FILE.test(entry))
          .sort()
          .map((entry) => join(path, entry))
      : [path];
    if (isDirectory && files.length === 0) throw new Error(`${path} holds no *.yaml, *.yml or *.json file`);
    for (const file of files) {
      try {
        inputs.push({ name: file, text: await readFile(file, 'utf8') });
      } catch (error) {
        throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
      }
    }
  }
  return inputs;
}

/** The objects whose content the injection changed, named as the diagnostics name them. */
export function injectedObjects(before: string, after: string): string[] {
  const options = { version: '1.1' } as const;
  const input = parseAllDocuments(before, options);
  const output = parseAllDocuments(after, options);
  if (!Array.isArray(input) || !Array.isArray(output)) return [];
  const names: string[] = [];
  output.forEach((document, index) => {
    const was: unknown = input[index]?.toJS();
    const now: unknown = document.toJS();
    if (JSON.stringify(was) === JSON.stringify(now)) return;
    const where = `document ${index + 1}`;
    if (isObject(now) && now.kind === 'List' && Array.isArray(now.items)) {
      const wasItems = isObject(was) && Array.isArray(was.items) ? was.items : [];
      now.items.forEach((item: unknown, i) => {
        if (JSON.stringify(item) !== JSON.stringify(wasItems[i]))
          names.push(describe(item, `${where}, item ${i + 1}`));
      });
    } else names.push(describe(now, where));
  });
  return names;
}

function describe(object: unknown, where: string): string {
  const record = isObject(object) ? object : {};
  const metadata = isObject(record.metadata) ? record.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : '';
  return `${String(record.kind)} ${JSON.stringify(namespace ? `${namespace}/${name}` : name)} (${where})`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One stream from several files: a `---` between them unless the next file starts with its own. */
function joinStreams(texts: string[]): string {
  let joined = '';
  for (const text of texts.filter((t) => t.trim() !== '')) {
    if (joined !== '' && !text.startsWith('---')) joined += '---\n';
    joined += text.endsWith('\n') ? text : `${text}\n`;
  }
  return joined;
}

/** --revision replaces the revision: Istio's `revision` value with Istio's inputs, else values.revision. */
function withRevision(files: ConfigFiles, revision: string | undefined): ConfigFiles {
  if (revision === undefined) return files;
  if (files.istio?.values !== null && files.istio?.values !== undefined) {
    const values = parseDocument(files.istio.values);
    values.set('revision', revision);
    return { ...files, istio: { ...files.istio, values: values.toString() } };
  }
  const values = parseDocument(files.valuesText ?? '{}');
  values.set('revision', revision);
  return { ...files, valuesText: values.toString() };
}
