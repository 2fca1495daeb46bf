/**
 * The `inject` command's flags, declared once: cli/main.ts builds the command's options from this table, and
 * InjectOptions (cli/inject.ts) takes its fields from it. Kept free of other imports, so declaring the command
 * loads nothing of injection.
 */
export const INJECT_FLAGS = [
  {
    key: 'output',
    flags: '-o, --output <file>',
    description: 'write the injected manifests here instead of stdout',
  },
  { key: 'offline', flags: '--offline', description: "use the packaged configuration; don't ask a cluster" },
  {
    key: 'config',
    flags: '--config <dir>',
    description:
      "configuration directory: template.yaml, values.yaml, envoy.yaml, Istio's istio-*.{json,yaml}",
  },
  {
    key: 'profile',
    flags: '--profile <name>',
    description: 'a configuration shipped in the package (manifests/profiles/NAME)',
  },
  {
    key: 'injectConfigFile',
    flags: '--injectConfigFile <file>',
    description: "Istio's injector config (istio-sidecar-injector's `config`); the istiod profile by default",
  },
  {
    key: 'valuesFile',
    flags: '--valuesFile <file>',
    description: "Istio's chart values (istio-sidecar-injector's `values`); the istiod profile by default",
  },
  {
    key: 'meshConfigFile',
    flags: '--meshConfigFile <file>',
    description: "Istio's mesh config (the istio ConfigMap's `mesh`); the istiod profile by default",
  },
  {
    key: 'revision',
    flags: '--revision <name>',
    description: "revision to record (istio.io/rev), instead of the configuration's",
  },
] as const;

type FlagValue<Flags extends string> = Flags extends `${string}<${string}>` ? string : boolean;

/** `{ output?: string; offline?: boolean; ... }`, from INJECT_FLAGS. */
export type InjectFlagOptions = {
  [Flag in (typeof INJECT_FLAGS)[number] as Flag['key']]?: FlagValue<Flag['flags']>;
};
