/**
 * A pod's own `istio-proxy` or `istio-init` container laid over the injected one, as Istio does (a Kubernetes
 * strategic merge patch, `reapplyOverwrittenContainers`): mappings merge key by key at every depth, lists of keyed
 * items merge item by item on their key, other lists and scalars replace. An empty mapping, or a key without a
 * value, changes nothing, so the injected hardening stays unless the user sets that very field.
 */
import type { V1Container } from '@kubernetes/client-node';

/** The merge keys of Container's keyed lists (patchMergeKey in k8s.io/api core/v1). */
const LIST_KEYS: Readonly<Record<string, string>> = {
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  resizePolicy: 'resourceName',
};

/** `image: auto` (or no image) keeps the injected image, as in Istio. */
export function mergeContainer(injected: V1Container, user: V1Container | undefined): V1Container {
  if (!user) return injected;
  const { image, ...fields } = user;
  const merged = mergeValue(injected, fields, '') as V1Container;
  return image && image !== 'auto' ? { ...merged, image } : merged;
}

function mergeValue(base: unknown, patch: unknown, key: string): unknown {
  if (patch === null || patch === undefined) return base;
  if (isRecord(base) && isRecord(patch)) {
    const merged: Record<string, unknown> = { ...base };
    for (const [field, value] of Object.entries(patch)) merged[field] = mergeValue(base[field], value, field);
    return merged;
  }
  const mergeKey = LIST_KEYS[key];
  if (mergeKey !== undefined && Array.isArray(base) && Array.isArray(patch)) {
    return mergeKeyedList(base, patch, mergeKey);
  }
  return patch;
}

/** Items with the same key merge in the injected item's place; the user's other items follow, in their order. */
function mergeKeyedList(base: unknown[], patch: unknown[], mergeKey: string): unknown[] {
  const keyOf = (item: unknown) => (isRecord(item) ? item[mergeKey] : undefined);
  const patchByKey = new Map(
    patch.filter((item) => keyOf(item) !== undefined).map((item) => [keyOf(item), item]),
  );
  const baseKeys = new Set(base.map(keyOf));
  return [
    ...base.map((item) => {
      const key = keyOf(item);
      return key !== undefined && patchByKey.has(key) ? mergeValue(item, patchByKey.get(key), '') : item;
    }),
    ...patch.filter((item) => keyOf(item) === undefined || !baseKeys.has(keyOf(item))),
  ];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
