import { describe, expect, it } from 'vitest';
import { PROXY_GID, PROXY_UID } from '../../common/constants.js';
import { initHardeningGaps, proxyHardeningGaps } from './sidecar-hardening.js';

const hardenedProxy = {
  runAsUser: PROXY_UID,
  runAsGroup: PROXY_GID,
  runAsNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ['ALL'] },
};

describe("the proxy's hardening", () => {
  it('has no gaps when every field is set', () => {
    expect(proxyHardeningGaps(hardenedProxy)).toEqual([]);
  });

  it('names each field that is missing or wrong', () => {
    expect(proxyHardeningGaps({ ...hardenedProxy, runAsUser: 0, readOnlyRootFilesystem: undefined })).toEqual(
      ['runAsUser is 0, expected 1337', 'readOnlyRootFilesystem is undefined, expected true'],
    );
    // Six fields and drop ALL; no capability is added.
    expect(proxyHardeningGaps(undefined)).toHaveLength(7);
  });

  it('allows no added capability and requires drop ALL', () => {
    expect(
      proxyHardeningGaps({ ...hardenedProxy, capabilities: { drop: ['NET_RAW'], add: ['NET_ADMIN'] } }),
    ).toEqual(['capabilities.drop does not include ALL', 'capabilities.add is ["NET_ADMIN"], expected none']);
  });
});

describe("istio-init's hardening", () => {
  const init = {
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { add: ['NET_RAW', 'NET_ADMIN'], drop: ['ALL'] },
  };

  it('has exactly NET_ADMIN and NET_RAW, in any order', () => {
    expect(initHardeningGaps(init)).toEqual([]);
  });

  it('names a capability too many and a privileged container', () => {
    expect(
      initHardeningGaps({
        ...init,
        privileged: true,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'], drop: ['ALL'] },
      }),
    ).toEqual([
      'privileged is true, expected false',
      'capabilities.add is ["NET_ADMIN","NET_RAW","SYS_ADMIN"], expected ["NET_ADMIN","NET_RAW"]',
    ]);
  });
});
