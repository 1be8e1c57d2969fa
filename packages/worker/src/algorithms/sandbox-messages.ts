import type { AlgorithmManifest } from '@arteria/sdk';

/**
 * What the host and an algorithm thread say to each other. Errors cross the thread
 * boundary as plain `{code, message}`; the host rebuilds ArteriaError for known codes.
 */
export interface ThreadConfig {
  /** file: URL of the algorithm's built entry module. */
  entryUrl: string;
  input: AlgorithmManifest['input'];
  /** Module whose default export creates the algorithm's InferenceBackend (see RunnerOptions). */
  inferenceModuleUrl: string | undefined;
  /** `gpu`: the manifest's resources.gpu, for backends that pick a device by it. */
  model: { name: string; digest: string; path: string; gpu: boolean } | undefined;
}

/**
 * A task: the whole file in one message, or a stream: `begin` with its first chunk, its
 * other chunks in order, then `end` (`abandoned` when the input failed its checks: the
 * thread drops the task); a stream read in one chunk is `begin` alone, `ended`, and the
 * thread decodes it as it decodes a whole file.
 */
export type TaskMessage =
  | {
      type: 'task';
      id: number;
      /** The DICOM file, transferred (not copied) into the thread. */
      bytes: ArrayBuffer;
      /** Refuse a file that does not declare de-identification (DEIDENTIFICATION_MISSING). */
      requireDeidentified: boolean;
    }
  /** `bytes`: the first chunk; `ended`: it is the whole input (no chunk or end follows, no credit is owed). */
  | { type: 'begin'; id: number; size: number; requireDeidentified: boolean; bytes?: ArrayBuffer; ended: boolean }
  | { type: 'chunk'; id: number; bytes: ArrayBuffer }
  | { type: 'end'; id: number; abandoned: boolean };

/**
 * What every algorithm thread may answer, whatever its tasks: loaded, not loaded, a task
 * failed. `wholeRuns`: the algorithm takes whole runs only (it has no `runStream`), so a
 * streamed input would only be gathered into one buffer in the thread.
 */
export type CommonThreadReply =
  | { type: 'ready'; wholeRuns?: boolean; incremental?: boolean }
  | { type: 'load-failed'; message: string }
  | { type: 'failed'; id: number; code: string; message: string };

export type ThreadMessage =
  | CommonThreadReply
  | { type: 'done'; id: number; outputJson: string; decodeMs: number; computeMs: number; heapMb: number }
  /** The thread has taken `bytes` of a stream task's chunks off its queue: the host may send more. */
  | { type: 'credit'; id: number; bytes: number };

/**
 * Shape check of what arrives from a thread, which runs code the platform does not own:
 * the common replies here, the kind's own replies by `isOwnReply`.
 */
export function isThreadReply(value: unknown, isOwnReply: (m: Record<string, unknown>) => boolean): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
      return (m.wholeRuns === undefined || typeof m.wholeRuns === 'boolean') && (m.incremental === undefined || typeof m.incremental === 'boolean');
    case 'load-failed':
      return typeof m.message === 'string';
    case 'failed':
      return typeof m.id === 'number' && typeof m.code === 'string' && typeof m.message === 'string';
    default:
      return isOwnReply(m);
  }
}

export function isThreadMessage(value: unknown): value is ThreadMessage {
  return isThreadReply(value, (m) => {
    switch (m.type) {
      case 'done':
        return typeof m.id === 'number' && typeof m.outputJson === 'string' && typeof m.decodeMs === 'number' && typeof m.computeMs === 'number' && typeof m.heapMb === 'number';
      case 'credit':
        return typeof m.id === 'number' && typeof m.bytes === 'number';
      default:
        return false;
    }
  });
}
