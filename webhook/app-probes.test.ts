import { describe, expect, it } from 'vitest';
import { rewriteAppProbes } from './app-probes.js';

describe("rewriting app probes to the status port (Istio's app_probe.go)", () => {
  const hello = {
    name: 'hello',
    image: 'example.com/hello:1',
    ports: [{ name: 'http', containerPort: 80 }],
    livenessProbe: { httpGet: { port: 'http' }, periodSeconds: 5 },
    readinessProbe: { httpGet: { port: 3333, scheme: 'HTTPS' } },
    startupProbe: { exec: { command: ['cat', '/tmp/ready'] } },
    lifecycle: { preStop: { tcpSocket: { port: 93 } } },
  };

  it('points HTTP and TCP probes and hooks at /app-health and /app-lifecycle, keeping their other fields', () => {
    const { containers } = rewriteAppProbes([hello], 15020);
    expect(containers[0]?.livenessProbe).toEqual({
      httpGet: { path: '/app-health/hello/livez', port: 15020 },
      periodSeconds: 5,
    });
    expect(containers[0]?.readinessProbe).toEqual({
      httpGet: { path: '/app-health/hello/readyz', port: 15020, scheme: 'HTTP' },
    });
    expect(containers[0]?.lifecycle?.preStop).toEqual({
      httpGet: { path: '/app-lifecycle/hello/prestopz', port: 15020 },
    });
  });

  it('leaves exec probes alone', () => {
    expect(rewriteAppProbes([hello], 15020).containers[0]?.startupProbe).toEqual(hello.startupProbe);
  });

  it('records the original probes for pilot-agent, keys sorted and named ports resolved, as Go writes them', () => {
    expect(rewriteAppProbes([hello], 15020).probers).toBe(
      '{"/app-health/hello/livez":{"httpGet":{"port":80}},' +
        '"/app-health/hello/readyz":{"httpGet":{"port":3333,"scheme":"HTTPS"}},' +
        '"/app-lifecycle/hello/prestopz":{"tcpSocket":{"port":93}}}',
    );
  });

  it('gives no probers when nothing is rewritten, and does not change the containers given', () => {
    const plain = { name: 'plain', image: 'example.com/plain:1' };
    expect(rewriteAppProbes([plain], 15020)).toEqual({ containers: [plain], probers: undefined });
    rewriteAppProbes([hello], 15020);
    expect(hello.livenessProbe.httpGet.port).toBe('http');
  });
});
