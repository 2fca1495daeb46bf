import { describe, expect, it } from 'vitest';
import { typicalPod } from '../test/fixtures/pods.js';
import { podShapeProblem } from './pod-shape.js';

/** A pod as raw JSON, so a test can put any value anywhere. */
interface RawPod extends Record<string, unknown> {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
}

const podWith = (change: (pod: RawPod) => void) => {
  const pod = typicalPod() as unknown as RawPod;
  change(pod);
  return pod;
};

describe('the shape of a pod that injection reads', () => {
  it('accepts a typical pod, and absent or null optional fields', () => {
    expect(podShapeProblem(typicalPod() as unknown as Record<string, unknown>)).toBeUndefined();
    expect(podShapeProblem({})).toBeUndefined();
    expect(podShapeProblem(podWith((pod) => (pod.metadata.labels = null)))).toBeUndefined();
    expect(podShapeProblem(podWith((pod) => (pod.spec.volumes = null)))).toBeUndefined();
  });

  it.each([
    ['spec.containers is not a list', (pod: RawPod) => (pod.spec.containers = 'web')],
    ['spec.initContainers is not a list', (pod: RawPod) => (pod.spec.initContainers = {})],
    ['spec.containers[0] is not an object with a name', (pod: RawPod) => (pod.spec.containers = [null])],
    ['spec.volumes[0] is not an object with a name', (pod: RawPod) => (pod.spec.volumes = [{ name: 1 }])],
    ['metadata.labels["app"] is not a string', (pod: RawPod) => (pod.metadata.labels = { app: 5 })],
    ['metadata.annotations is not an object', (pod: RawPod) => (pod.metadata.annotations = ['a'])],
    ['metadata.ownerReferences is not a list', (pod: RawPod) => (pod.metadata.ownerReferences = 'rs')],
    [
      'metadata.ownerReferences[0] is not an object with a name',
      (pod: RawPod) => (pod.metadata.ownerReferences = [null]),
    ],
    ['metadata.generateName is not a string', (pod: RawPod) => (pod.metadata.generateName = 5)],
    ['spec.serviceAccountName is not a string', (pod: RawPod) => (pod.spec.serviceAccountName = {})],
    ['spec.hostNetwork is not a boolean', (pod: RawPod) => (pod.spec.hostNetwork = 'true')],
    ['spec is not an object', (pod: RawPod) => ((pod as Record<string, unknown>).spec = [])],
  ])('reports "%s"', (problem, change) => {
    expect(podShapeProblem(podWith(change))).toBe(problem);
  });
});
