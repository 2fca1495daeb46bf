/**
 * The local node with mesh-injector installed from the locally built images: what `npm run e2e`, `npm start` and
 * the bench's real-node section run against. The images come from scripts/build-images.sh (reused while their
 * inputs are unchanged); they are built or found while the control plane starts, and the overlay is applied as soon
 * as the apiserver answers, while the node starts.
 */
import { IMAGES, ensureImages } from './images.js';
import { LOCAL_OVERLAY, applyMesh, waitForMesh, type Kubectl } from './mesh-install.js';
import { type NodeCluster, startNodeCluster } from './node-cluster.js';
import { onTerminationSignal } from './termination.js';

export const PAUSE_IMAGE = IMAGES.pause;
export const DEMO_IMAGE = IMAGES.demo;

export interface LocalMeshOptions {
  /** More to do once the apiserver answers, alongside the install (e.g. create a namespace). */
  whileNodeStarts?: (kubectl: Kubectl) => Promise<void>;
}

export async function startLocalMesh(
  log: (line: string) => void,
  options: LocalMeshOptions = {},
): Promise<NodeCluster> {
  const started = Date.now();
  const since = (line: string) => log(`${line} (${secondsSince(started)})`);
  // Ctrl-C or SIGTERM while the images build stops the build (the script removes its working containers).
  const building = new AbortController();
  const images = ensureImages({ cancelSignal: building.signal }).then((list) => {
    since(`images ready: ${list.map((image) => image.name).join(', ')}`);
    return list;
  });
  const stopBuild = onTerminationSignal(async () => {
    building.abort();
    await images.catch(() => {});
  });
  let cluster: NodeCluster;
  try {
    cluster = await startNodeCluster({
      pauseImage: PAUSE_IMAGE,
      images,
      log,
      whileNodeStarts: async (kubectl) => {
        await Promise.all([applyMesh(kubectl, LOCAL_OVERLAY, since), options.whileNodeStarts?.(kubectl)]);
      },
    });
  } catch (error) {
    building.abort();
    await images.catch(() => {});
    throw error;
  } finally {
    stopBuild.cancel();
  }
  try {
    await waitForMesh(cluster.kubectl, since);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}
