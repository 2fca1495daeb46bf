/**
 * docs/annotations.md, generated from the annotation table (webhook/annotations.test.ts checks that the file is
 * what this prints). Regenerate: `npm run build && node dist/webhook/annotations-doc.js > docs/annotations.md`, then
 * `npx prettier --write docs/annotations.md`.
 */
import { pathToFileURL } from 'node:url';
import { ANNOTATION_ROWS } from './annotations.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function annotationsMarkdown(): string {
  const rows = ANNOTATION_ROWS.map(
    (row) =>
      `| \`${row.name}\` | ${cell(row.effect)}${row.replacedBy ? ` Deprecated: use \`${row.replacedBy}\`.` : ''} | ` +
      `${cell(row.default)} | ${cell(row.fix)} |`,
  );
  return [
    '# Pod annotations',
    '',
    'Generated from the annotation table in `webhook/annotations.ts`, the one declaration of each annotation the',
    'injector reads (its parser, default and fix); do not edit by hand. An invalid value denies the pod with a',
    'message naming the annotation, the value and the fix. A deprecated annotation, or a value Istio accepts but',
    'treats as no decision, is injected and comes back as a warning in the admission response, which kubectl prints.',
    '',
    '| Annotation | Effect | Default | Fix for an invalid value |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    'Decided elsewhere: `sidecar.istio.io/inject` (label, or annotation; exactly `"true"` or `"false"`, any other',
    'value is a warning and the policy decides) and `sidecar.istio.io/status` (written by the injector).',
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(annotationsMarkdown());
}
