/**
 * The fields of a pod that injection reads, checked for the JSON types a Pod has. The apiserver only ever sends
 * well-typed pods, so a mismatch means a hand-made or corrupted AdmissionReview: it is answered 400 with the
 * field's path, instead of failing somewhere inside injection.
 */

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const absent = (value: unknown) => value === undefined || value === null;

/** Why `pod` (already known to be an object) is not shaped like a Pod, or undefined when it is. */
export function podShapeProblem(pod: Json): string | undefined {
  const metadata = pod.metadata;
  if (!absent(metadata)) {
    if (!isObject(metadata)) return 'metadata is not an object';
    for (const field of ['name', 'generateName', 'namespace']) {
      if (!absent(metadata[field]) && typeof metadata[field] !== 'string')
        return `metadata.${field} is not a string`;
    }
    for (const field of ['labels', 'annotations']) {
      const problem = stringMapProblem(metadata[field], `metadata.${field}`);
      if (problem) return problem;
    }
    const owners = listProblem(metadata.ownerReferences, 'metadata.ownerReferences');
    if (owners) return owners;
  }
  const spec = pod.spec;
  if (!absent(spec)) {
    if (!isObject(spec)) return 'spec is not an object';
    for (const field of ['containers', 'initContainers', 'volumes']) {
      const problem = listProblem(spec[field], `spec.${field}`);
      if (problem) return problem;
    }
    if (!absent(spec.serviceAccountName) && typeof spec.serviceAccountName !== 'string')
      return 'spec.serviceAccountName is not a string';
    if (!absent(spec.hostNetwork) && typeof spec.hostNetwork !== 'boolean')
      return 'spec.hostNetwork is not a boolean';
  }
  return undefined;
}

function stringMapProblem(value: unknown, path: string): string | undefined {
  if (absent(value)) return undefined;
  if (!isObject(value)) return `${path} is not an object`;
  const key = Object.keys(value).find((k) => typeof value[k] !== 'string');
  return key === undefined ? undefined : `${path}[${JSON.stringify(key)}] is not a string`;
}

/** A list of named objects: containers, volumes, owner references. */
function listProblem(value: unknown, path: string): string | undefined {
  if (absent(value)) return undefined;
  if (!Array.isArray(value)) return `${path} is not a list`;
  const index = value.findIndex((item) => !isObject(item) || typeof item.name !== 'string');
  return index < 0 ? undefined : `${path}[${index}] is not an object with a name`;
}
