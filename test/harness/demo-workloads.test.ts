import { describe, expect, it } from 'vitest';
import { sumCounter } from './demo-workloads.js';

const STATS = `# TYPE envoy_listener_downstream_cx_total counter
envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_15001"} 7
envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_15006"} 3
envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_15006",worker="1"} 2
envoy_listener_downstream_cx_total_extra{envoy_listener_address="0.0.0.0_15001"} 100
envoy_cluster_upstream_cx_total 9
`;

describe('sumCounter', () => {
  it('sums one counter over the series whose labels include the given ones', () => {
    const count = (address: string) =>
      sumCounter(STATS, 'envoy_listener_downstream_cx_total', { envoy_listener_address: address });
    expect(count('0.0.0.0_15001')).toBe(7);
    expect(count('0.0.0.0_15006')).toBe(5);
    expect(count('0.0.0.0_15021')).toBe(0);
  });

  it('reads a series without labels', () => {
    expect(sumCounter(STATS, 'envoy_cluster_upstream_cx_total', {})).toBe(9);
  });
});
