import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsWorkQueueConfig } from './nats-queue-options.js';
import { JS_ERROR, isJetStreamError, nanos } from '../jetstream.js';

/** Names of everything the queue keeps on the server. */
export interface NatsQueueLayout {
  workStream: string;
  recordStream: string;
  deadStream: string;
  readySubject: string;
  delayedSubject: string;
  recordPrefix: string;
  deadSubject: string;
  /** Core NATS (no stream): "a task was stored", sent after the store acknowledged it. */
  wakeSubject: string;
  /** Durable pull consumers on the work stream. */
  readyConsumer: string;
  delayedConsumer: string;
}

export function layoutOf(config: NatsWorkQueueConfig): NatsQueueLayout {
  const p = config.subjectPrefix;
  return {
    workStream: config.name,
    recordStream: `${config.name}_RECORDS`,
    deadStream: `${config.name}_DLQ`,
    readySubject: `${p}.ready`,
    delayedSubject: `${p}.delayed`,
    recordPrefix: `${p}.rec`,
    deadSubject: `${p}.dead`,
    wakeSubject: `${p}.wake`,
    readyConsumer: 'ready',
    delayedConsumer: 'delayed',
  };
}

/**
 * Creates the streams and consumers, or updates the streams' settings to the config.
 * Safe to run from every process at start.
 */
export async function provision(jsm: JetStreamManager, config: NatsWorkQueueConfig, layout: NatsQueueLayout): Promise<void> {
  const storage = config.storage === 'file' ? StorageType.File : StorageType.Memory;
  const common = { storage, num_replicas: config.replicas, discard: DiscardPolicy.Old };
  await ensureStream(jsm, {
    ...common,
    name: layout.workStream,
    subjects: [layout.readySubject, layout.delayedSubject],
    // Removed on ack or term; each consumer owns its own subject.
    retention: RetentionPolicy.Workqueue,
    duplicate_window: nanos(config.duplicateWindowMs),
  });
  await ensureStream(jsm, {
    ...common,
    name: layout.recordStream,
    subjects: [`${layout.recordPrefix}.*`],
    retention: RetentionPolicy.Limits,
    max_msgs_per_subject: 1,
    max_age: nanos(config.dedupeRetentionMs),
    duplicate_window: nanos(Math.min(config.dedupeRetentionMs, 60_000)),
  });
  await ensureStream(jsm, {
    ...common,
    name: layout.deadStream,
    subjects: [layout.deadSubject],
    retention: RetentionPolicy.Limits,
    max_age: nanos(config.deadLetterRetentionMs),
    duplicate_window: nanos(config.duplicateWindowMs),
  });
  for (const [durable, subject] of [
    [layout.readyConsumer, layout.readySubject],
    [layout.delayedConsumer, layout.delayedSubject],
  ] as const) {
    const settings = {
      ack_wait: nanos(config.ackWaitMs),
      // Arteria counts deliveries itself (deferring a delayed task is not one) and
      // dead-letters on its own; the server must never give up on a message.
      max_deliver: -1,
      max_ack_pending: -1,
    };
    try {
      await jsm.consumers.info(layout.workStream, durable);
      await jsm.consumers.update(layout.workStream, durable, settings);
    } catch (err) {
      if (!isJetStreamError(err, JS_ERROR.consumerNotFound)) throw err;
      await jsm.consumers.add(layout.workStream, {
        ...settings,
        durable_name: durable,
        filter_subject: subject,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
    }
  }
}

/** Creates the stream, or updates an existing one to `config`. Safe from every process. */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (err) {
    if (!isJetStreamError(err, JS_ERROR.streamNotFound)) throw err;
    await jsm.streams.add(config);
    return;
  }
  await jsm.streams.update(config.name, config);
}
