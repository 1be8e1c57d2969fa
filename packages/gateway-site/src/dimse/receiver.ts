import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { WriteStream } from 'node:fs';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import dimse from 'dcmjs-dimse';
import { ArteriaError } from '@arteria/protocol';
import { errorFields, type GatewayLogger, syncFolder } from '@arteria/gateway';
import { assertDatasetComplete } from './dataset-check.js';
import { openInstanceFile, readInstanceAttributes, settleInstanceFile } from './instance-file.js';
import { DatasetMismatch, storeErrorComment, storeFailureStatus } from './store-status.js';
import { ACCEPTED_STORAGE_CLASSES, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION_SOP_CLASS } from '@arteria/dicom';

type Association = InstanceType<typeof dimse.association.Association>;
type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
type CStoreResponse = InstanceType<typeof dimse.responses.CStoreResponse>;
type CEchoResponse = InstanceType<typeof dimse.responses.CEchoResponse>;
type PresentationContext = InstanceType<typeof dimse.association.PresentationContext>;
type Dataset = InstanceType<typeof dimse.Dataset>;

/** An instance being written to disk as it arrives. */
interface Incoming {
  path: string;
  writable: WriteStream;
  /** Where the data set starts in the file (after the file meta header the receiver wrote). */
  datasetOffset: number;
  transferSyntaxUid: string;
  /** Closed and fsynced (or failed). */
  settled?: Promise<void>;
  /** Aborted when the instance will never be stored (what follows it while it arrives stops). */
  dropped: AbortController;
}

const { Scp, Server, constants, responses } = dimse;
const { PresentationContextResult, Status, RejectResult, RejectSource, RejectReason } = constants;

export interface DicomReceiverOptions {
  /** The gateway's AE title; associations called to another title are rejected. */
  aeTitle: string;
  port: number;
  /** Interface to listen on (`0.0.0.0` for the modality network, `127.0.0.1` for tests). */
  host: string;
  /** Received instances are kept here, one folder per series, until their run is handed over. */
  folder: string;
  /** A series of single-frame instances is a complete run once none arrived for this long; a multi-frame instance is a run at once. */
  stableMs: number;
  /** When given, only these calling AE titles (the site's modalities) may associate. */
  callingAeTitles?: readonly string[];
  /** Called before an instance is stored; throwing refuses it (C-STORE status Out of Resources), e.g. a full outbox. */
  admit?: () => void;
  /**
   * Called with a whole instance's attributes before it is acknowledged; throwing refuses it
   * with the error's status and message (e.g. DEIDENTIFICATION_REFUSED: the site's policy
   * refuses an object that may show the patient's name in its pixels).
   */
  screen?: (instance: { sopClassUid: string; burnedInAnnotation: string; transferSyntaxUid: string }) => void;
  /**
   * DicomIntake: a multi-frame instance with native pixels is sent while its C-STORE is
   * still arriving, as a segmented run (default true; false: every instance is sent once
   * stored). What cannot go segmented (compressed, one frame, an algorithm the platform
   * answers NOT_INCREMENTAL for) gets the stored file whole.
   */
  streamWhileArriving?: boolean;
  /** Called when an instance's data set begins to arrive, with the file it is written to as it comes (streaming while it arrives). */
  onArriving?: (instance: { path: string; sopInstanceUid: string; dropped: AbortSignal }) => void;
}

/** One instance as received; the attributes routing needs, read once at arrival. */
export interface ReceivedInstance {
  path: string;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesDescription: string;
  protocolName: string;
  numberOfFrames: number;
}

export interface ReceivedRun {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  callingAeTitle: string;
  instances: ReceivedInstance[];
  /** The series folder. The owner removes the run's instance files once it is safely handed over, and the folder when that leaves it empty. */
  folder: string;
}

interface PendingSeries {
  run: ReceivedRun;
  lastAt: number;
}

/**
 * dcmjs-dimse logs every PDU at info, and its own copy of dcmjs warns about every private
 * element it cannot name. Both loggers are those libraries' module state; warnings and
 * errors still come through.
 */
export function quietDimse(): void {
  dimse.log.setLevel('warn');
  const nested = createRequire(import.meta.resolve('dcmjs-dimse'))('dcmjs') as { log?: { setLevel(level: string): void } };
  nested.log?.setLevel('error');
}

const safeName = (uid: string): string => uid.replace(/[^0-9.]/g, '_').slice(0, 64) || 'unknown';
const series = (run: ReceivedRun): string => run.seriesInstanceUid;

/**
 * A DICOM C-STORE and C-ECHO SCP (dcmjs-dimse). Each instance is written to disk and
 * fsynced before the success status goes back, so a store the modality saw succeed is
 * not lost. A multi-frame instance becomes a run as soon as it is stored; single frames of a
 * series become one once the series has been quiet for `stableMs`.
 */
export class DicomReceiver {
  readonly #options: DicomReceiverOptions;
  readonly #onRun: (run: ReceivedRun) => void;
  readonly #logger: GatewayLogger;
  readonly #pending = new Map<string, PendingSeries>();
  /** Instances on their way to disk, by their C-STORE request (the same object reaches cStoreRequest). */
  readonly #incoming = new Map<CStoreRequest, Incoming>();
  /** Open associations, by their socket: closing the receiver ends them. */
  readonly #associations = new Set<Socket>();
  /** Removals of partial instances still running (awaited by close). */
  readonly #discards = new Set<Promise<void>>();
  #server: InstanceType<typeof Server> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: DicomReceiverOptions, onRun: (run: ReceivedRun) => void, logger: GatewayLogger) {
    this.#options = options;
    this.#onRun = onRun;
    this.#logger = logger;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const net = (this.#server as unknown as { server?: NetServer } | undefined)?.server;
    return (net?.address() as AddressInfo | null)?.port ?? this.#options.port;
  }

  /** Associations whose connection is still open (the port serves each on its own). */
  get openAssociations(): number {
    return this.#associations.size;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    await mkdir(this.#options.folder, { recursive: true });
    await this.#recover();
    quietDimse();

    // dcmjs-dimse instantiates the SCP class per association; the class closes over this receiver.
    const store = (request: CStoreRequest, calling: string): Promise<void> => this.#store(request, calling);
    const discard = (files: Iterable<Incoming>, why: string): void => this.#discard(files, why);
    const associations = this.#associations;
    const incoming = this.#incoming;
    const folder = this.#options.folder;
    const logger = this.#logger;
    const aeTitle = this.#options.aeTitle;
    const callers = this.#options.callingAeTitles;
    const onArriving = this.#options.onArriving;
    class ArteriaScp extends Scp {
      #calling = '';
      /** Instances of this association whose data set has not fully arrived. */
      readonly #receiving = new Set<Incoming>();
      readonly #socket: Socket;

      constructor(...args: ConstructorParameters<typeof Scp>) {
        super(...args);
        this.#socket = args[0];
        associations.add(this.#socket);
        // A dropped connection or a protocol failure ends the association: what was half received goes.
        this.on('close', () => {
          associations.delete(this.#socket);
          this.#drop('the connection closed');
        });
        this.on('networkError', () => this.#drop('a network error'));
      }

      #drop(why: string): void {
        if (this.#receiving.size === 0) return;
        discard([...this.#receiving], why);
        this.#receiving.clear();
      }

      override associationRequested(association: Association): void {
        (this as unknown as { association: Association }).association = association;
        this.#calling = association.getCallingAeTitle();
        if (association.getCalledAeTitle().trim() !== aeTitle) {
          this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
          return;
        }
        if (callers !== undefined && !callers.includes(this.#calling.trim())) {
          logger.warn('DICOM association from an unknown calling AE title rejected', { callingAeTitle: this.#calling });
          this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
          return;
        }
        for (const { id } of association.getPresentationContexts()) {
          const context = association.getPresentationContext(id);
          const abstract = context.getAbstractSyntaxUid();
          if (abstract !== VERIFICATION_SOP_CLASS && !ACCEPTED_STORAGE_CLASSES.has(abstract)) {
            context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
            continue;
          }
          // The caller's order is its preference: a modality holding a compressed run lists that
          // syntax first and sends it as it is (the gateway never transcodes).
          const chosen = context.getTransferSyntaxUids().find((ts) => ACCEPTED_TRANSFER_SYNTAXES.includes(ts));
          if (chosen === undefined) context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          else context.setResult(PresentationContextResult.Accept, chosen);
        }
        this.sendAssociationAccept();
      }
      // Data sets stream to a file as they arrive: a multi-GB run is never held in memory.
      override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
        const transferSyntaxUid = context.getAcceptedTransferSyntaxUid() ?? ACCEPTED_TRANSFER_SYNTAXES[0] ?? '';
        const opened = openInstanceFile(folder, {
          sopClassUid: request.getAffectedSopClassUid(),
          sopInstanceUid: request.getAffectedSopInstanceUid(),
          transferSyntaxUid,
        });
        const file: Incoming = { ...opened, transferSyntaxUid, dropped: new AbortController() };
        file.writable.on('error', (err) => logger.error('writing a received instance failed', { path: file.path, ...errorFields(err) }));
        incoming.set(request, file);
        this.#receiving.add(file);
        onArriving?.({ path: file.path, sopInstanceUid: request.getAffectedSopInstanceUid().trim(), dropped: file.dropped.signal });
        return file.writable;
      }
      override createDatasetFromStoreWritableStream(writable: Writable, _context: PresentationContext, callback: (dataset: Dataset) => void): void {
        const file = [...incoming.values()].find((f) => f.writable === writable);
        // The last fragment arrived: from here the instance belongs to its C-STORE, which answers for it.
        if (file !== undefined) this.#receiving.delete(file);
        if (file !== undefined) file.settled = settleInstanceFile(file.writable, file.path);
        // The data set itself stays on disk; cStoreRequest reads what it needs from the file
        // (and a failed write surfaces there, as a failure status to the modality).
        void (file?.settled ?? Promise.resolve()).catch(() => undefined).finally(() => callback(new dimse.Dataset()));
      }
      // A-ABORT ends the association at once (PS3.8 7.3.3.2): nothing more is answered, the connection closes.
      override abort(source?: number, reason?: number): void {
        logger.warn('DICOM association aborted by the caller', { callingAeTitle: this.#calling, source, reason });
        this.#drop('the caller aborted the association');
        this.#socket.destroy();
      }
      override associationReleaseRequested(): void {
        this.sendAssociationReleaseResponse();
        // The caller closes after the release response; closing our side too means a caller that does not is not held.
        this.#socket.end();
      }
      override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
        const response = responses.CEchoResponse.fromRequest(request);
        response.setStatus(Status.Success);
        callback(response);
      }
      override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
        const response = responses.CStoreResponse.fromRequest(request);
        store(request, this.#calling).then(
          () => response.setStatus(Status.Success),
          (err: unknown) => {
            logger.error('C-STORE failed', { callingAeTitle: this.#calling, ...errorFields(err) });
            response.setStatus(storeFailureStatus(err));
            // The modality's log (and DCMTK's storescu) shows why, not only a number.
            response.setErrorComment(storeErrorComment(err));
          },
        ).finally(() => callback(response));
      }
    }
    const server = new Server(ArteriaScp);
    server.on('networkError', (err: Error) => this.#logger.warn('DICOM network error', errorFields(err)));
    const net = (server as unknown as { server?: NetServer }).server;
    await new Promise<void>((resolve, reject) => {
      // dcmjs-dimse hands this object to net.Server.listen, so a host can be given.
      server.listen({ port: this.#options.port, host: this.#options.host } as unknown as number);
      const inner = net ?? (server as unknown as { server?: NetServer }).server;
      if (inner === undefined) {
        resolve();
        return;
      }
      inner.once('listening', () => resolve());
      inner.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new ArteriaError('PORT_IN_USE', `DICOM port ${this.#options.port} is taken (option dicom.port)`, { cause: err }) : err),
      );
      inner.on('connection', (socket: Socket) => socket.setNoDelay(true));
    });
    this.#server = server;
    const tick = Math.max(10, Math.min(1000, Math.floor(this.#options.stableMs / 4)));
    this.#timer = setInterval(() => this.#flushStable(), tick);
    this.#logger.info('DICOM receiver listening', { aeTitle: this.#options.aeTitle, port: this.port });
  }

  /**
   * Stops listening and the completion timer and ends open associations; their partial
   * instances are removed, stored ones stay and are recovered on the next start. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#server?.close();
    for (const socket of this.#associations) socket.destroy();
    while (this.#discards.size > 0) await Promise.allSettled([...this.#discards]);
  }

  /** Resolves once every partial instance dropped so far is closed and removed. */
  async settled(): Promise<void> {
    while (this.#discards.size > 0) await Promise.allSettled([...this.#discards]);
  }

  /** Closes and removes instances whose data set will never complete; they were never acknowledged. */
  #discard(files: Iterable<Incoming>, why: string): void {
    for (const file of files) {
      file.dropped.abort(new ArteriaError('INVALID_DICOM', `the instance was never stored: ${why}`));
      for (const [request, f] of this.#incoming) if (f === file) this.#incoming.delete(request);
      const removal = (async () => {
        if (!file.writable.closed) {
          const closed = new Promise<void>((resolve) => file.writable.once('close', () => resolve()));
          file.writable.destroy();
          await closed;
        }
        await rm(file.path, { force: true });
        this.#logger.warn('a partly received instance was removed', { path: file.path, why });
      })().catch((err: unknown) => this.#logger.error('removing a partly received instance failed', { path: file.path, ...errorFields(err) }));
      this.#discards.add(removal);
      void removal.finally(() => this.#discards.delete(removal));
    }
  }

  async #store(request: CStoreRequest, callingAeTitle: string): Promise<void> {
    const file = this.#incoming.get(request);
    this.#incoming.delete(request);
    if (file === undefined) throw new ArteriaError('INVALID_DICOM', 'C-STORE without a data set');
    try {
      await file.settled;
      this.#options.admit?.();
      // Success only for a whole object: parsed to its last byte, and the one its command announced.
      await assertDatasetComplete(file.path, file.datasetOffset, file.transferSyntaxUid);
      const attributes = await readInstanceAttributes(file.path);
      if (attributes.sopInstanceUid !== request.getAffectedSopInstanceUid().trim() || attributes.sopClassUid !== request.getAffectedSopClassUid().trim()) {
        throw new DatasetMismatch(`the data set is ${attributes.sopClassUid} ${attributes.sopInstanceUid}, its C-STORE announced ${request.getAffectedSopClassUid()} ${request.getAffectedSopInstanceUid()}`);
      }
      this.#options.screen?.({ sopClassUid: attributes.sopClassUid, burnedInAnnotation: attributes.burnedInAnnotation, transferSyntaxUid: file.transferSyntaxUid });
      const folder = join(this.#options.folder, safeName(attributes.seriesInstanceUid));
      const path = join(folder, `${safeName(attributes.sopInstanceUid)}.dcm`);
      await this.#moveInto(folder, file.path, path);
      const { studyInstanceUid, seriesInstanceUid, ...instance } = attributes;
      const run: ReceivedRun = { studyInstanceUid, seriesInstanceUid, callingAeTitle, folder, instances: [] };
      // A multi-frame instance is a whole run in itself: it goes at once. Only a series of
      // single frames needs the quiet period to know it is complete.
      if (instance.numberOfFrames > 1) this.#handOver(series(run), { ...run, instances: [{ path, ...instance }] });
      else this.#add(run, { path, ...instance });
    } catch (err) {
      file.dropped.abort(err);
      await rm(file.path, { force: true });
      throw err;
    }
  }

  /** Renames a settled instance into its series folder, durably (the folder may be new, or removed by the intake meanwhile). */
  async #moveInto(folder: string, from: string, to: string): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      const created = await mkdir(folder, { recursive: true });
      try {
        await rename(from, to);
      } catch (err) {
        // The intake removes a series folder once it is empty; take it again once.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) continue;
        throw err;
      }
      // The file was fsynced; its new name (and a new series folder's) must be durable too before Success.
      await syncFolder(folder);
      if (created !== undefined) await syncFolder(this.#options.folder);
      return;
    }
  }

  #handOver(series: string, run: ReceivedRun): void {
    try {
      this.#onRun(run);
    } catch (err) {
      this.#logger.error('handing over a received run failed', { series, ...errorFields(err) });
    }
  }

  #add(run: ReceivedRun, instance: ReceivedInstance): void {
    const existing = this.#pending.get(run.seriesInstanceUid);
    const pending = existing ?? { run, lastAt: 0 };
    if (!pending.run.instances.some((i) => i.path === instance.path)) pending.run.instances.push(instance);
    pending.lastAt = performance.now();
    this.#pending.set(run.seriesInstanceUid, pending);
  }

  #flushStable(): void {
    const now = performance.now();
    for (const [series, pending] of this.#pending) {
      if (now - pending.lastAt < this.#options.stableMs) continue;
      this.#pending.delete(series);
      this.#handOver(series, pending.run);
    }
  }

  /** Instances stored before a restart become runs again (their routing attributes are read back). */
  async #recover(): Promise<void> {
    for (const entry of await readdir(this.#options.folder, { withFileTypes: true })) {
      const path = join(this.#options.folder, entry.name);
      if (!entry.isDirectory()) {
        if (entry.name.endsWith('.partial')) await rm(path, { force: true }); // never acknowledged to the modality
        continue;
      }
      for (const name of await readdir(path)) {
        const file = join(path, name);
        if (!name.endsWith('.dcm')) continue;
        try {
          const { studyInstanceUid, seriesInstanceUid, ...instance } = await readInstanceAttributes(file);
          const run: ReceivedRun = { studyInstanceUid, seriesInstanceUid, callingAeTitle: '', folder: path, instances: [] };
          // As when it arrived: a multi-frame instance is a run in itself; only single frames wait for their series to go quiet.
          if (instance.numberOfFrames > 1) this.#handOver(series(run), { ...run, instances: [{ path: file, ...instance }] });
          else this.#add(run, { path: file, ...instance });
        } catch (err) {
          this.#logger.error('a stored instance cannot be read; left in place', { path: file, ...errorFields(err) });
        }
      }
    }
  }
}
