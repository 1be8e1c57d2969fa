import { JetStreamApiError } from '@nats-io/jetstream';

/** The JetStream API error codes the adapters act on (nats-server's errors.json). */
export const JS_ERROR = {
  /** No stream of that name. */
  streamNotFound: 10059,
  /** No consumer of that name on the stream. */
  consumerNotFound: 10014,
  /** A publish expected another last sequence for its subject: another writer came first. */
  wrongLastSequence: 10071,
} as const;

/** Whether `err` is the JetStream API error `code`. */
export function isJetStreamError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** A duration as JetStream takes it: nanoseconds. */
export const nanos = (ms: number): number => ms * 1_000_000;
