/**
 * The sidecar template file (`template.yaml` in the config directory): which containers and volumes the injector
 * adds, as data. The code decides where they go (native or classic layout), which are dropped (istio-init when
 * interception is NONE, probes when the status port is 0) and what the pod's annotations say.
 */
import type { V1Container, V1Lifecycle, V1Volume } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { CONTAINER_NAMES } from '../common/constants.js';
import { compileTemplate, TemplateError, type CompiledTemplate } from './template.js';

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

const TEMPLATE_KEYS = ['initContainers', 'containers', 'volumes', 'holdApplicationLifecycle'] as const;
type TemplateKey = (typeof TEMPLATE_KEYS)[number];

export interface RenderedSidecar {
  init: V1Container | undefined;
  proxy: V1Container;
  volumes: V1Volume[];
  /** The proxy's lifecycle when the app must wait for it (classic layout only). */
  holdApplicationLifecycle: V1Lifecycle | undefined;
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

export function renderSidecar(
  template: SidecarTemplate,
  data: Readonly<Record<string, unknown>>,
): RenderedSidecar {
  const rendered = compiledTemplate(template)(data) as Partial<Record<TemplateKey, unknown>>;
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
  const lifecycle = rendered.holdApplicationLifecycle;
  if (
    lifecycle !== undefined &&
    (typeof lifecycle !== 'object' || lifecycle === null || Array.isArray(lifecycle))
  ) {
    throw new TemplateError('template.yaml: holdApplicationLifecycle must be a container lifecycle');
  }
  return {
    init,
    proxy,
    volumes: volumes as V1Volume[],
    holdApplicationLifecycle: lifecycle as V1Lifecycle | undefined,
  };
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
