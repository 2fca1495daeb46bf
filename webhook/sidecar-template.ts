/**
 * The sidecar template file (`template.yaml` in the config directory): which containers and volumes the injector
 * adds, as data. The code decides where they go (native or classic layout), which are dropped (istio-init when
 * interception is NONE, probes when the status port is 0) and what the pod's annotations say.
 */
import type { V1Container, V1Lifecycle, V1Volume } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { CONTAINER_NAMES } from '../common/constants.js';
import { compileTemplate, TemplateError, type CompiledTemplate } from './template.js';
import type { TemplateData } from './template-data.js';

/**
 * The template as written: placeholders not yet substituted. It stays plain data (its hash is the sidecar's
 * version, see status.ts templateVersion), and is compiled on first use (the trial
 * injection at load time).
 */
export type SidecarTemplate = Readonly<Record<TemplateKey, unknown>>;

/** Templates are never changed once parsed, so each compiles once, however many pods it renders. */
const compiled = new WeakMap<SidecarTemplate, CompiledTemplate>();

function compiledTemplate(template: SidecarTemplate): CompiledTemplate {
  let render = compiled.get(template);
  if (!render) {
    render = compileTemplate(template);
    compiled.set(template, render);
  }
  return render;
}

const TEMPLATE_KEYS = [
  'metadata',
  'initContainers',
  'containers',
  'volumes',
  'holdApplicationLifecycle',
  'nativeSidecarLifecycle',
] as const;
type TemplateKey = (typeof TEMPLATE_KEYS)[number];

export interface RenderedSidecar {
  init: V1Container | undefined;
  proxy: V1Container;
  volumes: V1Volume[];
  /** The proxy's lifecycle when the app must wait for it (classic layout only). */
  holdApplicationLifecycle: V1Lifecycle | undefined;
  /** The proxy's lifecycle as a native sidecar (Istio's drain on preStop); the classic layout has none. */
  nativeSidecarLifecycle: V1Lifecycle | undefined;
  /** Labels and annotations the template sets on the pod. */
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
}

export function parseSidecarTemplate(text: string): SidecarTemplate {
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new TemplateError(`template.yaml is not valid YAML: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TemplateError('template.yaml must be a mapping');
  }
  const unknown = Object.keys(parsed).filter((key) => !(TEMPLATE_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new TemplateError(`template.yaml: unknown key ${unknown[0]}; expected ${TEMPLATE_KEYS.join(', ')}`);
  }
  return parsed as SidecarTemplate;
}

export function renderSidecar(template: SidecarTemplate, data: TemplateData): RenderedSidecar {
  const rendered = compiledTemplate(template)(
    data as unknown as Readonly<Record<string, unknown>>,
  ) as Partial<Record<TemplateKey, unknown>>;
  const initContainers = containerList(rendered.initContainers, 'initContainers');
  const containers = containerList(rendered.containers, 'containers');
  const proxy = containers.find((container) => container.name === CONTAINER_NAMES.proxy);
  if (!proxy || containers.length !== 1) {
    throw new TemplateError(
      `template.yaml: containers must hold exactly one container, named ${CONTAINER_NAMES.proxy}`,
    );
  }
  const init = initContainers.find((container) => container.name === CONTAINER_NAMES.init);
  if (initContainers.length !== (init ? 1 : 0)) {
    throw new TemplateError(
      `template.yaml: initContainers may hold only a container named ${CONTAINER_NAMES.init}`,
    );
  }
  const volumes = rendered.volumes ?? [];
  if (!Array.isArray(volumes) || !volumes.every((volume) => typeof volume?.name === 'string')) {
    throw new TemplateError('template.yaml: volumes must be a list of named volumes');
  }
  return {
    init,
    proxy,
    volumes: volumes as V1Volume[],
    holdApplicationLifecycle: lifecycleOf(rendered.holdApplicationLifecycle, 'holdApplicationLifecycle'),
    nativeSidecarLifecycle: lifecycleOf(rendered.nativeSidecarLifecycle, 'nativeSidecarLifecycle'),
    metadata: podMetadata(rendered.metadata),
  };
}

function lifecycleOf(value: unknown, key: string): V1Lifecycle | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TemplateError(`template.yaml: ${key} must be a container lifecycle`);
  }
  return value as V1Lifecycle | undefined;
}

function containerList(value: unknown, key: string): V1Container[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TemplateError(`template.yaml: ${key} must be a list`);
  for (const container of value) {
    if (
      typeof container?.name !== 'string' ||
      typeof container?.image !== 'string' ||
      container.image === ''
    ) {
      throw new TemplateError(`template.yaml: every entry of ${key} needs a name and an image`);
    }
  }
  return value as V1Container[];
}

function podMetadata(value: unknown): RenderedSidecar['metadata'] {
  if (value === undefined) return { labels: {}, annotations: {} };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TemplateError('template.yaml: metadata must be a mapping with labels and annotations');
  }
  const { labels = {}, annotations = {}, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new TemplateError(`template.yaml: metadata.${unknown[0]}: only labels and annotations`);
  return { labels: stringMap(labels, 'labels'), annotations: stringMap(annotations, 'annotations') };
}

function stringMap(value: unknown, key: string): Record<string, string> {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    !Object.values(value).every((item) => typeof item === 'string')
  ) {
    throw new TemplateError(`template.yaml: metadata.${key} must map names to strings`);
  }
  return value as Record<string, string>;
}
