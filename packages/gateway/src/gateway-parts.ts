import type { S3Client } from '@aws-sdk/client-s3';
import { ArteriaError } from '@arteria/protocol';
import type { GatewayConfig } from './config/config.js';
import { DeviceConnection } from './connection/connection.js';
import { DeidentificationKey, ReidentificationStore } from '@arteria/deid';
import type { TypedEmitter } from './events.js';
import { PlatformFeatures } from './connection/platform-features.js';
import { FleetLink } from './config/fleet-link.js';
import { GrantedUrls } from './upload/granted-urls.js';
import { LocalStatusFile } from './local-status.js';
import { errorFields, type GatewayLogger } from './log.js';
import { Outbox } from './outbox/outbox.js';
import { s3PartStore } from './upload/part-store.js';
import { describeProxy, proxyAgentFor, proxyUrlFor } from './config/proxy.js';
import { Publisher } from './connection/publisher.js';
import { ResultIntake } from './connection/result-intake.js';
import { RunAbandoner } from './segmented/run-abandoner.js';
import { RunAnnouncer } from './runs/run-announcer.js';
import { RunIntake } from './runs/run-intake.js';
import type { RunTraces } from './runs/run-traces.js';
import { RunWaiters } from './runs/run-waiters.js';
import { SegmentStreamer } from './segmented/segment-streamer.js';
import { SegmentedIntake } from './segmented/segmented-intake.js';
import { createS3Client } from './upload/s3.js';
import { ensureFolder, spoolFolder } from './outbox/spool.js';
import { loadMqttTls } from './config/tls.js';
import type { GatewayEvents } from './types.js';
import { UploadGrants } from './upload/upload-grants.js';
import { UploadSweeper } from './upload/upload-sweeper.js';
import { Uploader } from './upload/uploader.js';
import type { BandwidthLimiter } from './upload/bandwidth.js';
import { UploadSlots } from './upload/upload-slots.js';
import { LinkMeter } from './upload/link-meter.js';
import { WholeFileRuns } from './segmented/whole-file-runs.js';

/** Everything a running gateway is made of; each part follows the outbox or the connection on its own. */
export interface GatewayParts {
  outbox: Outbox;
  s3: S3Client;
  connection: DeviceConnection;
  fleet: FleetLink;
  intake: RunIntake;
  /** Runs sent while they are acquired: taken in by segmentedIntake, streamed by streamer. */
  segmentedIntake: SegmentedIntake;
  streamer: SegmentStreamer;
  /** Abandons on the platform the segmented runs given up after their run-open. */
  abandoner: RunAbandoner;
  /** Complete files larger than segmentWholeFilesOverBytes, sent in segments (and sent whole on NOT_INCREMENTAL). */
  wholeFiles: WholeFileRuns;
  announcer: RunAnnouncer;
  waiters: RunWaiters;
  uploader: Uploader;
  publisher: Publisher;
  sweeper: UploadSweeper;
  /** What `arteria-gateway doctor` reads about this running gateway. */
  status: LocalStatusFile;
  /** Present unless de-identification is off. */
  reid: ReidentificationStore | undefined;
}

export interface PartsContext {
  config: GatewayConfig;
  logger: GatewayLogger;
  env: Readonly<Record<string, string | undefined>>;
  givenS3: S3Client | undefined;
  events: TypedEmitter<GatewayEvents>;
  traces: RunTraces;
  limiter: BandwidthLimiter;
  lifetime: AbortSignal;
}

/**
 * Builds a gateway's parts around its outbox. Nothing is wired through the gateway: each
 * part subscribes to the transitions (or connection events) it acts on, in this order of
 * delivery: announcer (clean-up and events first), waiters, then uploader and publisher
 * once started. Nothing runs until the gateway starts the uploader, publisher and connection.
 */
export async function openParts(ctx: PartsContext): Promise<GatewayParts> {
  const { config, logger, env, events, traces, limiter, lifetime } = ctx;
  const outbox = Outbox.open(config.outboxPath, {
    maxEntries: config.maxOutboxEntries,
    keepFinishedEntries: config.keepFinishedEntries,
    onListenerError: (err, t) => logger.error('an outbox transition listener threw', { entryId: t.entry.id, to: t.to, ...errorFields(err) }),
  });
  let reid: ReidentificationStore | undefined;
  try {
    const deidOptions = config.deidentification;
    let deid: { key: DeidentificationKey; store: ReidentificationStore } | undefined;
    if (deidOptions.enabled) {
      const key = await DeidentificationKey.loadOrCreate(deidOptions.keyPath ?? `${config.outboxPath}.deid-key`);
      reid = ReidentificationStore.open(deidOptions.reidPath ?? `${config.outboxPath}.reid`, key.storeKey());
      deid = { key, store: reid };
    }
    const spool = spoolFolder(config.outboxPath);
    await ensureFolder(spool);
    const s3Proxy = proxyAgentFor(config.s3.endpoint, config.proxy, env);
    const mqttProxy = proxyAgentFor(config.mqttUrl, config.proxy, env);
    for (const [what, target] of [['object store', config.s3.endpoint], ['broker', config.mqttUrl]] as const) {
      const proxy = proxyUrlFor(target, config.proxy, env);
      if (proxy !== undefined) logger.info(`${what} through proxy ${describeProxy(proxy)}`, { target });
    }
    const s3 = ctx.givenS3 ?? createS3Client(config.s3, s3Proxy);
    const connection = new DeviceConnection(
      {
        ...config,
        url: config.mqttUrl,
        connectTimeoutMs: config.mqttConnectTimeoutMs,
        protocol: config.mqttProtocol,
        reconnect: { initialMs: config.mqttReconnectPeriodMs, maxMs: config.mqttReconnectMaxMs },
        ...(mqttProxy ? { proxyAgent: mqttProxy } : {}),
        tls: await loadMqttTls(config.tls),
      },
      logger,
    );
    connection.on('ready', () => events.emit('connection', { state: 'ready' }));
    connection.on('down', () => events.emit('connection', { state: 'down' }));
    const fleet = new FleetLink({ config, connection, limiter, events, logger, lifetime });
    // Asked as soon as connected by a gateway that may compress, so that its first segment seldom waits for the answer.
    const askOnConnect = (): string | undefined => (fleet.segmentEncoding === 'none' ? undefined : fleet.algorithm);
    const features = new PlatformFeatures({ probes: fleet.probes, connection, timeoutMs: config.configConfirmTimeoutMs, logger, askOnConnect });
    // Upload grants come over the device's own MQTT topics: requests out, answers among the results.
    const grants = new UploadGrants((payload) => {
      if (connection.state !== 'ready') return Promise.reject(new ArteriaError('GRANT_UNAVAILABLE', 'not connected to the broker; upload grants come over MQTT'));
      return connection.publishRequest(payload);
    }, config.s3.grantTimeoutMs);
    // Default: no store credentials here; each object is written with the platform's upload grants.
    const store = config.s3.accessKeyId === undefined ? s3PartStore(s3, config.s3.bucket, { urls: new GrantedUrls((question, signal) => grants.ask(question, signal)) }) : s3PartStore(s3, config.s3.bucket);
    const publisher = new Publisher({ outbox, connection, logger, resendIntervalMs: config.resendIntervalMs, lifetime, events, traces });
    // One set of upload slots and one bandwidth cap for whole files and segments alike.
    const slots = new UploadSlots(config.uploadConcurrency);
    const abandoner = new RunAbandoner({ device: config, outbox, connection, logger, resendIntervalMs: config.resendIntervalMs });
    const streamer = new SegmentStreamer({ config, outbox, store, connection, logger, events, lifetime, limiter, slots, republishEnd: (entry) => void publisher.publish(entry), abandon: (entryId) => abandoner.abandon(entryId), traces, segmentEncoding: () => fleet.segmentEncoding, platformEncodings: (algorithm) => features.segmentEncodings(algorithm), meter: new LinkMeter() });
    const intakeContext = { config, outbox, spool, deid, fleet, traces, logger, lifetime };
    const segmentedIntake = new SegmentedIntake(intakeContext);
    const wholeFiles = new WholeFileRuns({ ...intakeContext, segmentedIntake, stopFollowing: (entryId) => streamer.stop(entryId) });
    new ResultIntake({ device: config, outbox, connection, logger, answers: [fleet.probes, grants], segmented: streamer, abandons: abandoner, wholeFiles, unreadable: (refusal) => features.unreadable(refusal) });
    if (config.s3.accessKeyId !== undefined) logger.warn('the gateway holds bucket-wide object-store keys (development mode); without s3.accessKeyId it uses upload grants', { endpoint: config.s3.endpoint });
    const sweeper = new UploadSweeper({ store, journal: outbox.uploads, prefix: `${config.tenant}/${config.device}/`, abandonedAfterMs: config.abandonedUploadAfterMs, logger, lifetime });
    return {
      outbox,
      s3,
      connection,
      fleet,
      reid,
      sweeper,
      status: new LocalStatusFile(config.outboxPath, config.mqttUrl, connection, outbox, logger),
      announcer: new RunAnnouncer({ outbox, events, traces, logger, sweeper, reid }),
      waiters: new RunWaiters({ outbox, resultTimeoutMs: config.resultTimeoutMs, lifetime }),
      uploader: new Uploader({ config, outbox, store, logger, lifetime, limiter, slots, events, connection, uploadsNeedConnection: config.s3.accessKeyId === undefined }),
      publisher,
      streamer,
      abandoner,
      wholeFiles,
      intake: new RunIntake(intakeContext),
      segmentedIntake,
    };
  } catch (err) {
    outbox.close();
    reid?.close();
    throw err;
  }
}
