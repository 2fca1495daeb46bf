/**
 * The injected images as the webhook's Deployment sets them (flags or environment, which a kustomize overlay's
 * `images:` rewrites), laid over values.yaml's `images` before the configuration is validated, so an override is
 * checked and trial-injected like the rest of the values.
 */
import { isMap, parseDocument } from 'yaml';
import type { ConfigFiles } from './config.js';

export interface ImageOverrides {
  proxy?: string;
  init?: string;
}

/** values.yaml with `images.proxy` and `images.init` replaced where an override is set; other text is kept. */
export function withImageOverrides(files: ConfigFiles, images: ImageOverrides): ConfigFiles {
  const set = Object.entries(images).filter((entry): entry is [string, string] => entry[1] !== undefined);
  if (set.length === 0) return files;
  let values = parseDocument(files.valuesText ?? '');
  if (values.contents === null && values.errors.length === 0) values = parseDocument('{}');
  // Values that are not a mapping are left for parseConfig to report.
  if (values.errors.length > 0 || !isMap(values.contents)) return files;
  for (const [name, image] of set) values.setIn(['images', name], image);
  return { ...files, valuesText: values.toString() };
}
