import type { Endpoint } from './tcp-report.js';

/**
 * The header each lab proxy adds to an HTTP request it forwards, as `<pod> outbound` or `<pod> inbound`, so the
 * app sees every proxy its request passed, in order.
 */
export const PROXY_HEADER = 'x-lab-proxy';

/** What the lab's HTTP app saw of one request; it answers with this as JSON. */
export interface HttpView {
  /** The app that answered. */
  app: string;
  /** The TCP peer: the client itself, or the last proxy. */
  peer: Endpoint;
  /** The address and port the request arrived on. */
  local: Endpoint;
  /** The PROXY_HEADER values, one per proxy the request passed. */
  proxies: string[];
}
