/**
 * What the webhook's annotation parsers and mesh-iptables' flag parsers throw for a bad value: what is wrong and
 * what would be accepted, so that every message can name both.
 */
export class ValueProblem extends Error {
  constructor(
    /** What is wrong, naming the offending item when the value is a list. */
    readonly reason: string,
    /** What would be accepted instead. */
    readonly accepted: string,
  ) {
    super(reason);
  }
}

/** A value quoted for a message: escapes newlines and control characters, and keeps long values readable. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
}
