import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import dimse from 'dcmjs-dimse';
import { ArteriaError } from '@arteria/protocol';
import { errorFields, type GatewayLogger } from '../log.js';
import { ACCEPTED_STORAGE_CLASSES, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION_SOP_CLASS } from './sop-classes.js';

type Association = InstanceType<typeof dimse.association.Association>;
type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
type CStoreResponse = InstanceType<typeof dimse.responses.CStoreResponse>;
type CEchoResponse = InstanceType<typeof dimse.responses.CEchoResponse>;

const { Scp, Server, constants, responses } = dimse;
const { PresentationContextResult, Status, RejectResult, RejectSource, RejectReason } = constants;
/** C-STORE failure statuses (PS3.4 Annex B.2.3). */
const STATUS_OUT_OF_RESOURCES = 0xa700;
const STATUS_CANNOT_UNDERSTAND = 0xc000;

export interface DicomReceiverOptions {
  /** The gateway's AE title; associations called to another title are rejected. */
  aeTitle: string;
  port: number;
  /** Interface to listen on (`0.0.0.0` for the modality network, `127.0.0.1` for tests). */
  host: string;
  /** Received instances are kept here, one folder per series, until their run is handed over. */
  folder: string;
  /** A series is a complete run once no instance of it arrived for this long. */
  stableMs: number;
  /** When given, only these calling AE titles (the site's modalities) may associate. */
  callingAeTitles?: readonly string[];
  /** Called before an instance is stored; throwing refuses it (C-STORE status Out of Resources), e.g. a full outbox. */
  admit?: () => void;
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
  /** The series folder; the owner removes it once the run is safely handed over. */
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

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '').trim();
const safeName = (uid: string): string => uid.replace(/[^0-9.]/g, '_').slice(0, 64) || 'unknown';

/**
 * A DICOM C-STORE and C-ECHO SCP (dcmjs-dimse). Each instance is written to disk and
 * fsynced before the success status goes back, so a store the modality saw succeed is
 * not lost. A series becomes a run once it has been quiet for `stableMs`.
 */
export class DicomReceiver {
  readonly #options: DicomReceiverOptions;
  readonly #onRun: (run: ReceivedRun) => void;
  readonly #logger: GatewayLogger;
  readonly #pending = new Map<string, PendingSeries>();
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

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    await mkdir(this.#options.folder, { recursive: true });
    await this.#recover();
    quietDimse();

    // dcmjs-dimse instantiates the SCP class per association; the class closes over this receiver.
    const store = (request: CStoreRequest, calling: string): Promise<void> => this.#store(request, calling);
    const logger = this.#logger;
    const aeTitle = this.#options.aeTitle;
    const callers = this.#options.callingAeTitles;
    class ArteriaScp extends Scp {
      #calling = '';
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
          const proposed = context.getTransferSyntaxUids();
          const chosen = ACCEPTED_TRANSFER_SYNTAXES.find((ts) => proposed.includes(ts));
          if (chosen === undefined) context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          else context.setResult(PresentationContextResult.Accept, chosen);
        }
        this.sendAssociationAccept();
      }
      override associationReleaseRequested(): void {
        this.sendAssociationReleaseResponse();
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
            logger.error('C-STORE failed', errorFields(err));
            // A bad object cannot be understood; anything else (disk, full outbox) is a lack of resources.
            const badObject = err instanceof ArteriaError && err.code === 'INVALID_DICOM';
            response.setStatus(badObject ? STATUS_CANNOT_UNDERSTAND : STATUS_OUT_OF_RESOURCES);
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

  /** Stops listening and the completion timer; instances on disk stay and are recovered on the next start. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#server?.close();
    return Promise.resolve();
  }

  async #store(request: CStoreRequest, callingAeTitle: string): Promise<void> {
    this.#options.admit?.();
    const dataset = request.getDataset();
    if (dataset === undefined) throw new ArteriaError('INVALID_DICOM', 'C-STORE without a data set');
    const elements = dataset.getElements();
    const study = str(elements.StudyInstanceUID);
    const series = str(elements.SeriesInstanceUID);
    const sop = str(elements.SOPInstanceUID);
    if (series === '' || sop === '') throw new ArteriaError('INVALID_DICOM', 'instance without Series or SOP Instance UID');
    const folder = join(this.#options.folder, safeName(series));
    await mkdir(folder, { recursive: true });
    const path = join(folder, `${safeName(sop)}.dcm`);
    const partial = `${path}.partial`;
    await new Promise<void>((resolve, reject) => dataset.toFile(partial, (err) => (err ? reject(err) : resolve())));
    const file = await open(partial, 'r+');
    try {
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(partial, path);
    const instance: ReceivedInstance = {
      path,
      sopClassUid: str(elements.SOPClassUID),
      sopInstanceUid: sop,
      seriesDescription: str(elements.SeriesDescription),
      protocolName: str(elements.ProtocolName),
      numberOfFrames: Number(elements.NumberOfFrames ?? 1) || 1,
    };
    this.#add({ studyInstanceUid: study, seriesInstanceUid: series, callingAeTitle, folder, instances: [] }, instance);
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
      try {
        this.#onRun(pending.run);
      } catch (err) {
        this.#logger.error('handing over a received run failed', { series, ...errorFields(err) });
      }
    }
  }

  /** Instances stored before a restart become runs again (their routing attributes are read back). */
  async #recover(): Promise<void> {
    const seriesFolders = await readdir(this.#options.folder, { withFileTypes: true });
    for (const entry of seriesFolders) {
      if (!entry.isDirectory()) continue;
      const folder = join(this.#options.folder, entry.name);
      for (const name of await readdir(folder)) {
        const path = join(folder, name);
        if (name.endsWith('.partial')) {
          await rm(path, { force: true }); // never acknowledged to the modality
          continue;
        }
        const dataset = dimse.Dataset.fromFile(path);
        const elements = dataset?.getElements() ?? {};
        const series = str(elements.SeriesInstanceUID);
        if (series === '') continue;
        this.#add(
          { studyInstanceUid: str(elements.StudyInstanceUID), seriesInstanceUid: series, callingAeTitle: '', folder, instances: [] },
          {
            path,
            sopClassUid: str(elements.SOPClassUID),
            sopInstanceUid: str(elements.SOPInstanceUID),
            seriesDescription: str(elements.SeriesDescription),
            protocolName: str(elements.ProtocolName),
            numberOfFrames: Number(elements.NumberOfFrames ?? 1) || 1,
          },
        );
      }
    }
  }
}
