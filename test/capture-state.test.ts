/**
 * What `mesh-iptables` leaves in a pod's rule tables: a second run and `--cleanup-only`, compared with `iptables-save`
 * and `ip6tables-save` of the real kernel, on both iptables backends. (A failed apply rolling back is tested in
 * test/init-apply.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAINS } from '../common/constants.js';
import { missingRequirements } from './harness/requirements.js';
import type { IptablesBackend, Lab, Pod } from './lab/index.js';
import {
  createLab,
  IPTABLES_BACKENDS,
  labRequirements,
  restoreRules,
  runMeshIptables,
  saveRules,
  webhookInitArgs,
  withoutEmptyTables,
} from './lab/index.js';

const missing = missingRequirements(labRequirements(), 'capture state tests (network namespaces)');

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
    /** The init arguments of a pod without traffic annotations. */
    let defaultArgs: string[];
    beforeAll(async () => {
      lab = await createLab();
      defaultArgs = await webhookInitArgs();
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
      const run = await runMeshIptables(pod, args, { backend, dualStack: true });
      expect(run.exitCode, `mesh-iptables ${args.join(' ')} failed:\n${run.stderr}${run.stdout}`).toBe(0);
    }

    /** What the init program wrote: its chains are there in both families. */
    function expectCapture(rules: { ipv4: string; ipv6: string }): void {
      expect(rules.ipv4).toContain(`:${CHAINS.output}`);
      expect(rules.ipv6).toContain(`:${CHAINS.output}`);
    }

    it('a second run with the same arguments changes nothing', async () => {
      const pod = await podWithEarlierRules('rerun');
      await expectSuccess(pod, defaultArgs);
      const applied = await rulesOf(pod);
      expectCapture(applied);

      await expectSuccess(pod, defaultArgs);
      expect(await rulesOf(pod)).toEqual(applied);
    });

    it('--cleanup-only restores the rules the pod had before', async () => {
      const pod = await podWithEarlierRules('cleanup');
      const before = await rulesOf(pod);
      await expectSuccess(pod, defaultArgs);
      expectCapture(await rulesOf(pod));

      await expectSuccess(pod, [...defaultArgs, '--cleanup-only']);
      expect(await rulesOf(pod)).toEqual(before);
    });

    it('--cleanup-only leaves a pod that had no rules without rules', async () => {
      const pod = await lab.addPod('cleanup-fresh');
      const before = await rulesOf(pod);
      await expectSuccess(pod, defaultArgs);
      expectCapture(await rulesOf(pod));

      await expectSuccess(pod, [...defaultArgs, '--cleanup-only']);
      const after = await rulesOf(pod);
      expect({ ipv4: withoutEmptyTables(after.ipv4), ipv6: withoutEmptyTables(after.ipv6) }).toEqual(before);
    });
  },
);
