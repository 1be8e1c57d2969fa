import type { GrantAnswerV1, PartialResultV1, ProbeAnswerV1, ResultV1 } from '@arteria/protocol';

/** Delivers a result to its device (QoS 1); resolves once the broker has acknowledged it. */
export interface ResultPublisher {
  publish(result: ResultV1): Promise<void>;
  /** Answers a device's admission probe on its results topic (ingest's publisher has it; a worker's needs none). */
  publishProbeAnswer?(answer: ProbeAnswerV1): Promise<void>;
  /** Answers a device's upload grant request on its results topic (ingest's publisher). */
  publishGrant?(answer: GrantAnswerV1): Promise<void>;
  /** Sends a segmented run's partial result (an event certain before the run ends) on its device's results topic (a worker's publisher). */
  publishPartial?(partial: PartialResultV1): Promise<void>;
  close(): Promise<void>;
}
