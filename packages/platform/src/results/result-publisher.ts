import type { ResultV1 } from '@arteria/protocol';

/** Delivers a result to its device (QoS 1); resolves once the broker has acknowledged it. */
export interface ResultPublisher {
  publish(result: ResultV1): Promise<void>;
  close(): Promise<void>;
}
