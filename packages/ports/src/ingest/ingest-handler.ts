import type { DeviceAddress, GrantAnswerV1, GrantRequestV1, ParsedTopic, TraceContext } from '@arteria/protocol';

/** What the transport knows about the copy it hands over. */
export interface ReceivedCopy {
  /**
   * Epoch ms at which this copy reached the platform. A copy received before the result
   * was recorded, or within `answerResendAfterMs` after, is a stale one (it crossed the
   * result, which the device gets): it is not answered again. One received later is the
   * device asking again. Without it, every copy of a completed request is answered.
   */
  receivedAt?: number;
  /** The trace context the transport carried beside the payload (MQTT 5 user properties); it wins over the request's `trace`. */
  trace?: TraceContext;
}

export type IngestOutcome =
  | { status: 'accepted'; requestId: string }
  /** `answered`: the recorded result was published again for this copy. */
  | { status: 'duplicate'; requestId: string; completed: boolean; answered?: boolean }
  | { status: 'rejected'; requestId: string; code: string }
  | { status: 'probed'; probeId: string; refused: number }
  /** An upload grant was answered (`code`: why it was refused). */
  | { status: 'granted'; grantId: string; code?: string };

/**
 * What a transport (an MQTT subscription, a JetStream consumer) hands each device message
 * to. A throw means "not taken": the transport withholds its acknowledgement so the
 * message comes again.
 */
export interface IngestHandler {
  handle(topic: ParsedTopic, payload: Buffer, copy?: ReceivedCopy): Promise<IngestOutcome>;
}

/** Signs a device's upload grant: URLs for one key under its own prefix, or a typed refusal (never throws for a refusal). */
export interface UploadGrantSigner {
  issue(from: DeviceAddress, request: GrantRequestV1): Promise<GrantAnswerV1>;
}
