/**
 * What `mesh-iptables` leaves in a pod's rule tables: a second run, a failed run and `--cleanup-only`, compared with
 * `iptables-save` and `ip6tables-save` of the real kernel, on both iptables backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN_PREFIX, CHAINS } from '../common/constants.js';
import { missingRequirements } from './harness/requirements.js';
import type { IptablesBackend, Lab, Pod } from './lab/index.js';
import {
  createLab,
  IPTABLES_BACKENDS,
  labRequirements,
  restoreRules,
  runMeshIptables,
  saveRules,
  WEBHOOK_DEFAULT_ARGS,
} from './lab/index.js';

const missing = missingRequirements(labRequirements(), 'capture state tests (network namespaces)');

/** PLACEHOLDER until init/main.ts documents its hook. */
const IPV6_APPLY_FAILURE = { MESH_IPTABLES_FAIL_IPV6: '1' };

/** Rules a pod had before the init program ran (say, from its CNI plugin), in the tables the program writes. */
const EARLIER_RULES = `*nat
:EARLIER - [0:0]
-A PREROUTING -j EARLIER
-A OUTPUT -p udp --dport 53 -j RETURN
-A EARLIER -p tcp --dport 7000 -j RETURN
COMMIT
*filter
-A INPUT -p tcp --dport 7001 -j ACCEPT
COMMIT
`;

describe.skipIf(missing.length > 0).each(IPTABLES_BACKENDS)(
  'rule state with iptables-%s',
  (backend: IptablesBackend) => {
    let lab: Lab;
    beforeAll(async () => {
      lab = await createLab();
    });
    afterAll(() => lab?.destroy());

    /** A pod that already has EARLIER_RULES in both families. */
    async function podWithEarlierRules(name: string): Promise<Pod> {
      const pod = await lab.addPod(name);
      await restoreRules(pod, backend, 'ipv4', EARLIER_RULES);
      await restoreRules(pod, backend, 'ipv6', EARLIER_RULES);
      return pod;
    }

    async function rulesOf(pod: Pod, table?: string): Promise<{ ipv4: string; ipv6: string }> {
      const [ipv4, ipv6] = await Promise.all([
        saveRules(pod, backend, 'ipv4', table),
        saveRules(pod, backend, 'ipv6', table),
      ]);
      return { ipv4, ipv6 };
    }

    async function expectSuccess(pod: Pod, args: readonly string[]): Promise<void> {
      const run = await runMeshIptables(pod, backend, args);
      expect(run.exitCode, `mesh-iptables ${args.join(' ')} failed:\n${run.stderr}${run.stdout}`).toBe(0);
    }

    it('a second run with the same arguments changes nothing', async () => {
      const pod = await lab.addPod('rerun');
      await expectSuccess(pod, WEBHOOK_DEFAULT_ARGS);
      const applied = await rulesOf(pod, 'nat');
      expect(applied.ipv4).toContain(`:${CHAINS.output}`);
      expect(applied.ipv6).toContain(`:${CHAINS.output}`);

      await expectSuccess(pod, WEBHOOK_DEFAULT_ARGS);
      expect(await rulesOf(pod, 'nat')).toEqual(applied);
    });

    it('a failure in the IPv6 apply leaves the rules of both families as they were', async () => {
      const pod = await podWithEarlierRules('failing');
      const before = await rulesOf(pod);

      const run = await runMeshIptables(pod, backend, WEBHOOK_DEFAULT_ARGS, IPV6_APPLY_FAILURE);
      expect(run.exitCode).not.toBe(0);

      const after = await rulesOf(pod);
      expect(after.ipv4).not.toContain(CHAIN_PREFIX);
      expect(after.ipv6).not.toContain(CHAIN_PREFIX);
      expect(after).toEqual(before);
    });

    it('--cleanup-only restores the rules the pod had before', async () => {
      const pod = await podWithEarlierRules('cleanup');
      const before = await rulesOf(pod);
      await expectSuccess(pod, WEBHOOK_DEFAULT_ARGS);
      const applied = await rulesOf(pod);
      expect(applied.ipv4).toContain(`:${CHAINS.output}`);
      expect(applied.ipv6).toContain(`:${CHAINS.output}`);

      await expectSuccess(pod, [...WEBHOOK_DEFAULT_ARGS, '--cleanup-only']);
      expect(await rulesOf(pod)).toEqual(before);
    });
  },
);
