import { isThreadReply, type CommonThreadReply } from '../algorithms/sandbox-messages.js';

/**
 * What the host and an incremental thread say to each other (segmented runs). The state
 * crosses as the bytes of its checkpoint (encodeState), so what the host stores is exactly
 * what the next step, on any worker, starts from.
 */
export type IncrementalRequest =
  | { type: 'open'; id: number; header: ArrayBuffer; requireDeidentified: boolean }
  | { type: 'segment'; id: number; header: ArrayBuffer; state: ArrayBuffer; pixels: ArrayBuffer; firstFrame: number; frameCount: number }
  | { type: 'finish'; id: number; header: ArrayBuffer; state: ArrayBuffer; frames: number };

export type IncrementalReply =
  | CommonThreadReply
  | { type: 'stepped'; id: number; state: ArrayBuffer; eventsJson: string }
  | { type: 'finished'; id: number; outputJson: string };

/** Shape check of what arrives from a thread, which runs code the platform does not own. */
export function isIncrementalReply(value: unknown): value is IncrementalReply {
  return isThreadReply(value, (m) => {
    switch (m.type) {
      case 'stepped':
        return typeof m.id === 'number' && m.state instanceof ArrayBuffer && typeof m.eventsJson === 'string';
      case 'finished':
        return typeof m.id === 'number' && typeof m.outputJson === 'string';
      default:
        return false;
    }
  });
}
