/**
 * The local node with mesh-injector installed from the locally built images: what `npm run e2e` and `npm start`
 * run against. The images come from scripts/build-images.sh (reused while their inputs are unchanged).
 */
import { IMAGES, ensureImages } from './images.js';
import { LOCAL_OVERLAY, installMesh } from './mesh-install.js';
import { type NodeCluster, startNodeCluster } from './node-cluster.js';

export const PAUSE_IMAGE = IMAGES.pause;
export const DEMO_IMAGE = IMAGES.demo;

export async function startLocalMesh(log: (line: string) => void): Promise<NodeCluster> {
  const started = Date.now();
  const images = await ensureImages();
  log(`images ready: ${images.map((image) => image.name).join(', ')} (${secondsSince(started)})`);
  const cluster = await startNodeCluster({ pauseImage: PAUSE_IMAGE, images, log });
  try {
    await installMesh(cluster.kubectl, LOCAL_OVERLAY, (line) => log(`${line} (${secondsSince(started)})`));
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}
