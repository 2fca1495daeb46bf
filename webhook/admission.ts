/**
 * AdmissionReview (admission.k8s.io/v1 and v1beta1): checking what the apiserver sent, and shaping the answer in
 * the same apiVersion with the request's uid.
 */
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { podShapeProblem } from './pod-shape.js';

export const REVIEW_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type ReviewVersion = (typeof REVIEW_VERSIONS)[number];

interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: string;
  object?: unknown;
  dryRun?: boolean;
}

export interface AdmissionReview {
  apiVersion: ReviewVersion;
  request: AdmissionRequest;
}

export type ParseResult = { ok: true; review: AdmissionReview } | { ok: false; reason: string };

export function parseAdmissionReview(body: unknown): ParseResult {
  const fail = (reason: string): ParseResult => ({
    ok: false,
    reason: `malformed AdmissionReview: ${reason}`,
  });
  if (!isObject(body)) return fail('the body is not a JSON object');
  if (body.kind !== 'AdmissionReview')
    return fail(`kind is ${JSON.stringify(body.kind)}, want "AdmissionReview"`);
  if (!REVIEW_VERSIONS.includes(body.apiVersion as ReviewVersion)) {
    return fail(
      `apiVersion is ${JSON.stringify(body.apiVersion)}, want one of ${REVIEW_VERSIONS.join(', ')}`,
    );
  }
  const request = body.request;
  if (!isObject(request)) return fail('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') return fail('request.uid is missing');
  if (typeof request.operation !== 'string') return fail('request.operation is missing');
  if (!isObject(request.kind) || typeof request.kind.kind !== 'string')
    return fail('request.kind is missing');
  if (!isObject(request.resource) || typeof request.resource.resource !== 'string') {
    return fail('request.resource is missing');
  }
  return {
    ok: true,
    review: { apiVersion: body.apiVersion as ReviewVersion, request: request as unknown as AdmissionRequest },
  };
}

/** A pod CREATE on the core pods resource (not a subresource such as pods/ephemeralcontainers). */
export function isPodCreate(request: AdmissionRequest): boolean {
  return (
    request.operation === 'CREATE' &&
    request.kind.group === '' &&
    request.kind.kind === 'Pod' &&
    request.resource.resource === 'pods' &&
    !request.subResource
  );
}

/** The pod in a pod CREATE, or why it is not one. */
export function podOf(request: AdmissionRequest): { ok: true; pod: V1Pod } | { ok: false; reason: string } {
  const pod = request.object;
  if (!isObject(pod)) return { ok: false, reason: 'malformed AdmissionReview: request.object is not a pod' };
  if (pod.spec !== undefined && !isObject(pod.spec)) {
    return { ok: false, reason: 'malformed AdmissionReview: request.object.spec is not an object' };
  }
  if (pod.metadata !== undefined && !isObject(pod.metadata)) {
    return { ok: false, reason: 'malformed AdmissionReview: request.object.metadata is not an object' };
  }
  const shape = podShapeProblem(pod);
  if (shape) return { ok: false, reason: `malformed AdmissionReview: request.object.${shape}` };
  return { ok: true, pod: pod as V1Pod };
}

/** `warnings` reach the client that created the pod (kubectl prints them); the apiserver takes them from 1.19. */
export type Verdict =
  | { allowed: true; patch?: Operation[]; warnings?: string[] }
  | { allowed: false; message: string; warnings?: string[] };

export function admissionResponse(review: AdmissionReview, verdict: Verdict) {
  const response: Record<string, unknown> = { uid: review.request.uid };
  if (verdict.warnings && verdict.warnings.length > 0) response.warnings = verdict.warnings.map(warningText);
  response.allowed = verdict.allowed;
  const patch = patchOf(verdict);
  if (patch) {
    response.patchType = 'JSONPatch';
    response.patch = base64Json(patch);
  }
  if (!verdict.allowed) response.status = { code: 400, reason: 'BadRequest', message: verdict.message };
  return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response };
}

/**
 * JSON.stringify(admissionResponse(review, verdict)), built without scanning the base64 patch (most of the answer:
 * it carries the proxy's bootstrap) a second time: base64 needs no JSON escaping, so it is placed as is.
 *
 * Text, not a Buffer: Node copies a string into memory it frees as soon as the write is done, where a Buffer per
 * answer is external memory that dead answers pile up in until the next full collection (RSS grew 30% over 50 000
 * requests in test/load.test.ts with Buffers; see docs/benchmarks.md).
 */
export function admissionResponseJson(review: AdmissionReview, verdict: Verdict): string {
  const patch = patchOf(verdict);
  if (!patch) return JSON.stringify(admissionResponse(review, verdict));
  const allowed = JSON.stringify(admissionResponse(review, { allowed: true, warnings: verdict.warnings }));
  // `allowed` is the last key of the response, which is the last key of the review: the text ends with `true}}`.
  return `${allowed.slice(0, -2)},"patchType":"JSONPatch","patch":"${base64Json(patch)}"}}`;
}

/**
 * A warning travels to the client in a `Warning` HTTP header, so it must be one line of printable text: control
 * characters (which an annotation value quoted in it may hold) become spaces.
 */
function warningText(warning: string): string {
  return [...warning].map((char) => (char < ' ' || char === '\u007f' ? ' ' : char)).join('');
}

function patchOf(verdict: Verdict): Operation[] | undefined {
  return verdict.allowed && verdict.patch && verdict.patch.length > 0 ? verdict.patch : undefined;
}

/**
 * Other JSON text, encoded as UTF-8, goes through one scratch buffer kept between calls, since a fresh Buffer per answer
 * (Buffer.from) costs more than the encoding itself; it is used synchronously, so reuse is safe. Above a megabyte
 * the buffer is not kept, so one huge answer does not pin its size for the life of the process.
 */
const SCRATCH_KEPT_BYTES = 1024 * 1024;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

function base64Json(value: unknown): string {
  const { text, ascii } = jsonWithKeptStrings(value);
  // ASCII text (a patch almost always is: JSON escapes nothing into non-ASCII, and the bootstrap is ASCII) is its
  // own UTF-8, and btoa encodes it natively in one step, four times faster than through a buffer.
  if (ascii) return btoa(text);
  // A UTF-16 code unit becomes at most 3 bytes of UTF-8.
  const bound = text.length * 3;
  let buffer = scratch;
  if (bound > buffer.length) {
    buffer = Buffer.allocUnsafeSlow(bound);
    if (bound <= SCRATCH_KEPT_BYTES) scratch = buffer;
  }
  const length = buffer.write(text, 0);
  return buffer.toString('base64', 0, length);
}

/**
 * Long strings come back in patch after patch (the proxy's bootstrap, JSON inside a string, is in every one) and
 * are the slow part of JSON.stringify, which escapes them character by character. Each is escaped once and kept
 * (a few, none over 64 KiB, so what is kept stays small whatever pods bring). The value is serialised with a
 * marker in each one's place, and the kept JSON goes where its marker is. (JSON.rawJSON would place it in one step,
 * but a raw JSON value takes JSON.stringify off its fast path for the whole patch, which costs more than it saves.)
 *
 * A marker holds a random nonce, so a pod cannot spell one; should a string in the value hold a marker all the
 * same, the text is serialised plainly instead.
 */
const LONG_STRING_CHARS = 1024;
const KEPT_STRING_CHARS = 64 * 1024;
const KEPT_STRINGS = 16;
const escapedStrings = new Map<string, JsonText>();
const MARKER_NONCE = randomBytes(12).toString('base64url');
const MARKERS = Array.from({ length: KEPT_STRINGS }, (_, index) => `\u0000${MARKER_NONCE}:${index}`);
const MARKERS_JSON = MARKERS.map((marker) => JSON.stringify(marker));

/** The marker that stands for the index-th long string of a value while it is serialised. */
export const longStringMarker = (index: number): string => MARKERS[index]!;

/** JSON text, and whether it is all ASCII (checked on the short text and once per kept string, not on the whole). */
interface JsonText {
  text: string;
  ascii: boolean;
}

function jsonWithKeptStrings(value: unknown): JsonText {
  const longStrings: string[] = [];
  let text = JSON.stringify(withMarkers(value, longStrings));
  let ascii = isAscii(text);
  for (let index = 0; index < longStrings.length; index++) {
    const marker = MARKERS_JSON[index]!;
    const at = text.indexOf(marker);
    if (at < 0 || text.includes(marker, at + marker.length)) {
      const plain = JSON.stringify(value);
      return { text: plain, ascii: isAscii(plain) };
    }
    const kept = escapedOnce(longStrings[index]!);
    text = text.slice(0, at) + kept.text + text.slice(at + marker.length);
    ascii &&= kept.ascii;
  }
  return { text, ascii };
}

const isAscii = (text: string) => Buffer.byteLength(text) === text.length;

function escapedOnce(text: string): JsonText {
  let escaped = escapedStrings.get(text);
  if (escaped === undefined) {
    const json = JSON.stringify(text);
    escaped = { text: json, ascii: isAscii(json) };
    if (escapedStrings.size >= KEPT_STRINGS) escapedStrings.clear();
    escapedStrings.set(text, escaped);
  }
  return escaped;
}

/**
 * The value as JSON.stringify sees it, with its first long strings (up to KEPT_STRINGS, in `found`) replaced by
 * markers: the value itself when it holds none, else copies of the plain objects and arrays on the way to them
 * (the value is shared with the pod and must not change). Objects of other kinds (anything with a prototype of its
 * own, which may have a toJSON) are left as they are.
 */
function withMarkers(value: unknown, found: string[]): unknown {
  if (typeof value === 'string') {
    if (
      value.length < LONG_STRING_CHARS ||
      value.length > KEPT_STRING_CHARS ||
      found.length >= KEPT_STRINGS
    ) {
      return value;
    }
    found.push(value);
    return MARKERS[found.length - 1];
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const replaced = withMarkers(value[i], found);
      if (replaced !== value[i]) (copy ??= value.slice())[i] = replaced;
    }
    return copy ?? value;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const replaced = withMarkers(record[key], found);
    if (replaced !== record[key]) (copy ??= { ...record })[key] = replaced;
  }
  return copy ?? value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
