/**
 * The JSON patch from a pod to its injected form, for the hot path. The operations are exactly those of
 * fast-json-patch's `compare` (objects key by key, arrays index by index, the same order), with two differences that
 * matter for speed and not for the result:
 *
 * - whatever the injected pod shares with the original is skipped by identity, and injectPod copies only what it
 *   changes, so the walk visits only what injection changed (for a 1 MiB pod, a few lists and two maps);
 * - added and replaced values are the injected pod's own objects, not deep copies: `compare` copies each one
 *   through JSON.stringify and JSON.parse, which for the proxy container and its bootstrap was a tenth of the
 *   webhook's CPU. The patch is serialised at once and nothing mutates either pod, so sharing is safe.
 *
 * webhook/patch.test.ts checks, on generated pods, that the patch equals `compare`'s and that fast-json-patch
 * applies it to the same pod.
 */
import { escapePathComponent, type Operation } from 'fast-json-patch';

type Json = Record<string, unknown> | unknown[];

export function injectionPatch(original: object, injected: object): Operation[] {
  const operations: Operation[] = [];
  diff(original as Json, injected as Json, '', operations);
  return operations;
}

function diff(before: Json, after: Json, path: string, operations: Operation[]): void {
  if (before === after) return;
  const beforeRecord = before as Record<string, unknown>;
  const afterRecord = after as Record<string, unknown>;
  const afterIsArray = Array.isArray(after);
  const sameKind = Array.isArray(before) === afterIsArray;
  const beforeKeys = keysOf(before);
  let removed = false;
  // Old keys from last to first, so that removing array items leaves the indexes still to visit unchanged.
  for (let i = beforeKeys.length - 1; i >= 0; i--) {
    const key = beforeKeys[i]!;
    const oldValue = beforeRecord[key];
    const keyPath = `${path}/${escapePathComponent(key)}`;
    if (hasOwn(after, key) && !(afterRecord[key] === undefined && oldValue !== undefined && !afterIsArray)) {
      const newValue = afterRecord[key];
      if (
        isContainer(oldValue) &&
        isContainer(newValue) &&
        Array.isArray(oldValue) === Array.isArray(newValue)
      ) {
        diff(oldValue, newValue, keyPath, operations);
      } else if (oldValue !== newValue) {
        operations.push({ op: 'replace', path: keyPath, value: asPatchValue(newValue) });
      }
    } else if (sameKind) {
      operations.push({ op: 'remove', path: keyPath });
      removed = true;
    } else {
      operations.push({ op: 'replace', path, value: after });
    }
  }
  const afterKeys = keysOf(after);
  if (!removed && afterKeys.length === beforeKeys.length) return;
  for (const key of afterKeys) {
    if (!hasOwn(before, key) && afterRecord[key] !== undefined) {
      operations.push({
        op: 'add',
        path: `${path}/${escapePathComponent(key)}`,
        value: asPatchValue(afterRecord[key]),
      });
    }
  }
}

function keysOf(value: Json): string[] {
  if (!Array.isArray(value)) return Object.keys(value);
  const keys = new Array<string>(value.length);
  for (let i = 0; i < value.length; i++) keys[i] = String(i);
  return keys;
}

function hasOwn(value: Json, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(value, key);
}

function isContainer(value: unknown): value is Json {
  return typeof value === 'object' && value !== null;
}

/** `compare` turns an undefined array item into null, as JSON does; everything else is kept as it is. */
function asPatchValue(value: unknown): unknown {
  return value === undefined ? null : value;
}
