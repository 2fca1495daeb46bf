/**
 * The sidecar template: YAML data with placeholders, rendered by structural substitution. A placeholder never
 * splices text into YAML, so no value, however hostile, can add structure to the rendered pod.
 *
 *   key: "{{ path }}"        the value at path, of any type; null or absent removes the key (or list item)
 *   - "{{ ...path }}"        in a list: the list at path, spliced in place
 *   key: "text {{ path }}"   a string, number or boolean at path, interpolated into the text
 */

export class TemplateError extends Error {}

const WHOLE = /^\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}$/;
const SPREAD = /^\{\{\s*\.\.\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}$/;
const EMBEDDED = /\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}/g;
const ANY_BRACES = /\{\{|\}\}/;

const OMIT = Symbol('omit');

export function renderTemplate(template: unknown, data: Readonly<Record<string, unknown>>): unknown {
  const rendered = render(template, data, '');
  return rendered === OMIT ? null : rendered;
}

function render(node: unknown, data: Readonly<Record<string, unknown>>, where: string): unknown {
  if (typeof node === 'string') return renderString(node, data, where);
  if (Array.isArray(node)) {
    const items: unknown[] = [];
    node.forEach((item, index) => {
      const spread = typeof item === 'string' ? SPREAD.exec(item) : null;
      if (spread) {
        const value = lookup(data, spread[1] as string, `${where}[${index}]`);
        if (value === null || value === undefined) return;
        if (!Array.isArray(value)) throw new TemplateError(`${where}[${index}]: ${spread[1]} is not a list`);
        items.push(...structuredClone(value));
        return;
      }
      const value = render(item, data, `${where}[${index}]`);
      if (value !== OMIT) items.push(value);
    });
    return items;
  }
  if (typeof node === 'object' && node !== null) {
    const object: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      const rendered = render(value, data, where === '' ? key : `${where}.${key}`);
      if (rendered !== OMIT) object[key] = rendered;
    }
    return object;
  }
  return node;
}

function renderString(text: string, data: Readonly<Record<string, unknown>>, where: string): unknown {
  const whole = WHOLE.exec(text);
  if (whole) {
    const value = lookup(data, whole[1] as string, where);
    return value === null || value === undefined ? OMIT : structuredClone(value);
  }
  if (ANY_BRACES.test(text.replace(EMBEDDED, ''))) {
    throw new TemplateError(`${where}: malformed placeholder in ${JSON.stringify(text)}`);
  }
  return text.replace(EMBEDDED, (_match, path: string) => {
    const value = lookup(data, path, where);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new TemplateError(
        `${where}: ${path} cannot be interpolated into text (it is ${describe(value)})`,
      );
    }
    return String(value);
  });
}

function lookup(data: Readonly<Record<string, unknown>>, path: string, where: string): unknown {
  let value: unknown = data;
  for (const key of path.split('.')) {
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
