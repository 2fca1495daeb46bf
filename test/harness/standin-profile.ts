/**
 * The injector configuration a cluster with the stand-in profile (manifests/profiles/standin, a kustomize Component)
 * runs: the shipped ConfigMap with the profile's template.yaml merged over it, and the local images set as the
 * Deployment's environment sets them (an overlay's `images:`, test/e2e/overlay).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_FILES, parseConfig, readConfigFiles, type InjectorConfig } from '../../webhook/config.js';
import { withImageOverrides } from '../../webhook/image-overrides.js';
import { IMAGES } from './images.js';
import { repoPath } from './repo.js';
import { SHIPPED_CONFIG_DIR } from './webhook-process.js';

export const STANDIN_PROFILE_DIR = repoPath('manifests', 'profiles', 'standin');

export async function loadStandinConfig(): Promise<InjectorConfig> {
  const [shipped, templateText] = await Promise.all([
    readConfigFiles(SHIPPED_CONFIG_DIR),
    readFile(join(STANDIN_PROFILE_DIR, CONFIG_FILES.template), 'utf8'),
  ]);
  return parseConfig(
    withImageOverrides({ ...shipped, templateText }, { proxy: IMAGES.proxy, init: IMAGES.init }),
  );
}
