/**
 * Just enough of the Dockerfile and .dockerignore formats to check this repository's Dockerfile without a Docker
 * engine: instructions (with line continuations and comments), stages, COPY, exec-form arrays, and the
 * .dockerignore path filter.
 */

export interface Instruction {
  /** Upper-case: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line where the instruction starts. */
  line: number;
}

export interface Stage {
  /** The `AS` name, if any. */
  name: string | undefined;
  /** The base image, with global ARG defaults substituted. */
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

export class DockerfileError extends Error {}

export function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comments (and parser directives) are dropped, also between continuation lines, as Docker does.
    if (trimmed.startsWith('#')) return;
    if (trimmed === '' && pending === undefined) return;
    const continues = trimmed.endsWith('\\');
    const content = continues ? trimmed.slice(0, -1).trim() : trimmed;
    pending =
      pending === undefined
        ? { text: content, line: index + 1 }
        : { text: `${pending.text} ${content}`.trim(), line: pending.line };
    if (!continues) {
      instructions.push(toInstruction(pending.text, pending.line));
      pending = undefined;
    }
  });
  if (pending !== undefined) {
    throw new DockerfileError(`line ${pending.line}: the file ends inside a line continuation`);
  }
  return instructions;
}

function toInstruction(text: string, line: number): Instruction {
  const match = /^([A-Za-z]+)(?:\s+(.*))?$/.exec(text);
  if (!match) throw new DockerfileError(`line ${line}: not an instruction: ${JSON.stringify(text)}`);
  return { keyword: (match[1] as string).toUpperCase(), args: (match[2] ?? '').trim(), line };
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const [image, as, name, ...rest] = words;
      if (image === undefined || (as !== undefined && (as.toUpperCase() !== 'AS' || !name)) || rest.length) {
        throw new DockerfileError(`line ${instruction.line}: expected FROM image [AS name]`);
      }
      stages.push({ name, base: substitute(image, globalArgs), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') {
        throw new DockerfileError(`line ${instruction.line}: only ARG may come before the first FROM`);
      }
      const [argName, value = ''] = instruction.args.split('=', 2);
      globalArgs.set((argName as string).trim(), value.trim());
    } else {
      (stages.at(-1) as Stage).instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

function substitute(text: string, variables: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const value = variables.get((braced ?? bare) as string);
    if (value === undefined) throw new DockerfileError(`${whole} is not a global ARG`);
    return value;
  });
}

/** An exec-form argument list (`["a", "b"]`); shell form is refused, since it runs under /bin/sh. */
export function execForm(instruction: Instruction): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(instruction.args);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new DockerfileError(
      `line ${instruction.line}: ${instruction.keyword} is not in exec form (a JSON array of strings)`,
    );
  }
  return parsed;
}

/**
 * The environment a stage's ENV instructions set, later ones winning. Only the `KEY=value` form, with values that
 * need no quoting: anything else is refused rather than misread.
 */
export function stageEnv(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const instruction of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const word of instruction.args.split(/\s+/)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=([^"'\\$\s]*)$/.exec(word);
      if (!match) {
        throw new DockerfileError(`line ${instruction.line}: expected ENV KEY=value (unquoted), got ${word}`);
      }
      env.set(match[1] as string, match[2] as string);
    }
  }
  return env;
}

export interface Copy {
  /** The `--from` stage or image; undefined for the build context. */
  from: string | undefined;
  sources: string[];
  destination: string;
}

export function parseCopy(instruction: Instruction): Copy {
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  const paths = words.filter((word) => !word.startsWith('--'));
  const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
  if (paths.length < 2)
    throw new DockerfileError(`line ${instruction.line}: COPY needs a source and a destination`);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1) as string };
}

/**
 * Whether .dockerignore keeps `path` (relative, `/`-separated) out of the build context: the last pattern that
 * matches the path or one of its parent directories decides, and `!` patterns put paths back.
 */
export function isIgnored(path: string, dockerignore: string): boolean {
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.');
  const candidates = segments.map((_, index) => segments.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const rawLine of dockerignore.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const regex = globToRegExp(pattern);
    if (candidates.some((candidate) => regex.test(candidate))) ignored = !negated;
  }
  return ignored;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (pattern.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
