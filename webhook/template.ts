/**
 * The sidecar template: YAML data with placeholders, rendered by structural substitution. A placeholder never
 * splices text into YAML, so no value, however hostile, can add structure to the rendered pod.
 *
 *   key: "{{ path }}"        the value at path, of any type; null or absent removes the key (or list item)
 *   - "{{ ...path }}"        in a list: the list at path, spliced in place
 *   key: "text {{ path }}"   a string, number or boolean at path, interpolated into the text
 *
 * A template is compiled once (placeholders found and paths split) and then rendered per pod without parsing.
 * Errors that depend only on the template are still raised at render time, in document order, exactly as when a
 * data-dependent error (an unknown placeholder) comes first.
 */

export class TemplateError extends Error {}

type Data = Readonly<Record<string, unknown>>;

/** Renders a compiled template; null when the whole template is a placeholder with no value. */
export type CompiledTemplate = (data: Data) => unknown;

const WHOLE = /^\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}$/;
const SPREAD = /^\{\{\s*\.\.\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}$/;
const EMBEDDED = /\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}/g;
const ANY_BRACES = /\{\{|\}\}/;

const OMIT = Symbol('omit');

type Render = (data: Data) => unknown;
/** Renders one list item into `items`: none (omitted), one, or a spliced list. */
type RenderItem = (data: Data, items: unknown[]) => void;

export function compileTemplate(template: unknown): CompiledTemplate {
  const render = compile(template, '');
  return (data) => {
    const rendered = render(data);
    return rendered === OMIT ? null : rendered;
  };
}

/** Compiles and renders in one go; for a template rendered once. */
export function renderTemplate(template: unknown, data: Data): unknown {
  return compileTemplate(template)(data);
}

function compile(node: unknown, where: string): Render {
  if (typeof node === 'string') return compileString(node, where);
  if (Array.isArray(node)) {
    const renderItems = node.map((item, index) => compileItem(item, `${where}[${index}]`));
    return (data) => {
      const items: unknown[] = [];
      for (const renderItem of renderItems) renderItem(data, items);
      return items;
    };
  }
  if (typeof node === 'object' && node !== null) {
    const fields = Object.entries(node).map(
      ([key, value]) => [key, compile(value, where === '' ? key : `${where}.${key}`)] as const,
    );
    return (data) => {
      const object: Record<string, unknown> = {};
      for (const [key, render] of fields) {
        const rendered = render(data);
        if (rendered !== OMIT) object[key] = rendered;
      }
      return object;
    };
  }
  return () => node;
}

function compileItem(item: unknown, where: string): RenderItem {
  const spread = typeof item === 'string' ? SPREAD.exec(item) : null;
  if (spread) {
    const path = spread[1] as string;
    const keys = path.split('.');
    return (data, items) => {
      const value = lookup(data, keys, path, where);
      if (value === null || value === undefined) return;
      if (!Array.isArray(value)) throw new TemplateError(`${where}: ${path} is not a list`);
      items.push(...(copyOf(value) as unknown[]));
    };
  }
  const render = compile(item, where);
  return (data, items) => {
    const value = render(data);
    if (value !== OMIT) items.push(value);
  };
}

function compileString(text: string, where: string): Render {
  const whole = WHOLE.exec(text);
  if (whole) {
    const path = whole[1] as string;
    const keys = path.split('.');
    return (data) => {
      const value = lookup(data, keys, path, where);
      return value === null || value === undefined ? OMIT : copyOf(value);
    };
  }
  if (ANY_BRACES.test(text.replace(EMBEDDED, ''))) {
    const error = `${where}: malformed placeholder in ${JSON.stringify(text)}`;
    return () => {
      throw new TemplateError(error);
    };
  }
  // split() with a capturing group alternates text and placeholder paths: [text, path, text, ..., text].
  const parts = text.split(EMBEDDED);
  if (parts.length === 1) return () => text;
  const placeholders = parts
    .filter((_part, index) => index % 2 === 1)
    .map((path) => ({ path, keys: path.split('.') }));
  const texts = parts.filter((_part, index) => index % 2 === 0);
  return (data) => {
    let result = texts[0] as string;
    placeholders.forEach(({ path, keys }, index) => {
      const value = lookup(data, keys, path, where);
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new TemplateError(
          `${where}: ${path} cannot be interpolated into text (it is ${describe(value)})`,
        );
      }
      result += String(value) + (texts[index + 1] as string);
    });
    return result;
  };
}

/**
 * A deep copy, so the result shares nothing with the data; strings and numbers are immutable. Plain objects and
 * lists (all that values and annotations give) are copied directly: structuredClone costs a serialisation each.
 */
function copyOf(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyOf);
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  // A loop rather than Object.fromEntries(Object.entries(…)): copies run on every render, and the entry arrays
  // were most of what a render allocated.
  const record = value as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    // Parsed JSON may hold an own `__proto__` key; assigning it would set the copy's prototype instead.
    if (key === '__proto__') Object.defineProperty(copy, key, { ...OWN_DATA, value: copyOf(record[key]) });
    else copy[key] = copyOf(record[key]);
  }
  return copy;
}

const OWN_DATA = { enumerable: true, writable: true, configurable: true } as const;

function lookup(data: Data, keys: readonly string[], path: string, where: string): unknown {
  let value: unknown = data;
  for (const key of keys) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) {
      throw new TemplateError(`${where}: unknown placeholder ${path}`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}
