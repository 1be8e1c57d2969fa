import { z } from 'zod';
import { AlgorithmRef, PartialEventV1 } from '@arteria/protocol';
import type { SegmentedStep } from '../queue/task.js';

/** A partial event as a run's checkpoint keeps it: numbered, with the frames seen when it came. */
export const RecordedEvent = z.strictObject({ seq: z.number().int().nonnegative(), framesSeen: z.number().int().positive(), event: PartialEventV1 });
export type RecordedEvent = z.infer<typeof RecordedEvent>;

/** What a segmented run's checkpoint says beside the algorithm's state. */
export const CheckpointMeta = z.strictObject({
  /** Segments folded in so far: the index of the next one. */
  next: z.number().int().nonnegative(),
  /** Frames folded in so far: the next segment's first frame. */
  frames: z.number().int().nonnegative(),
  headerSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** SHA-256 of each folded segment, in order (for the run's digest at its end). */
  segmentSha256s: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  /** The version the run was opened with: every step of the run runs it. */
  algorithm: AlgorithmRef,
  /** Every partial event reported so far, in seq order. */
  events: z.array(RecordedEvent),
});
export type CheckpointMeta = z.infer<typeof CheckpointMeta>;

export interface RunCheckpoint extends CheckpointMeta {
  requestId: string;
  /** The algorithm's incremental state (encodeState of @arteria/sdk). */
  state: Uint8Array;
  /** How many of `events` were published (they are published in order). */
  published: number;
}

/** A step that came before the run was ready for it, kept until it is (a segment by index, or the end). */
export type ParkedStep = Extract<SegmentedStep, { phase: 'segment' | 'end' }>;

/**
 * Durable state of the segmented runs in progress, shared by every worker of a queue.
 * Each write is compare-and-set on the number of folded segments, so two deliveries of
 * one step (a lease that ran out under a slow worker) fold it once: the second finds the
 * checkpoint advanced and drops its own.
 */
export interface RunCheckpointStore {
  get(requestId: string): Promise<RunCheckpoint | undefined>;
  /** Writes a run's first checkpoint; false when the run has one already. */
  create(checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean>;
  /** Replaces the checkpoint that has folded `from` segments; false when the stored one has not (another delivery got there first). */
  advance(from: number, checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean>;
  /** Notes that the first `count` events were published; never lowers the count. */
  markPublished(requestId: string, count: number): Promise<void>;
  /** Keeps a step for later; the first kept under its key (segment index or end) stands. */
  park(requestId: string, step: ParkedStep): Promise<void>;
  parked(requestId: string, key: number | 'end'): Promise<ParkedStep | undefined>;
  /** Forgets a run (after its result is recorded). Idempotent. */
  remove(requestId: string): Promise<void>;
  close(): Promise<void>;
}
