import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { connect, type MqttClient } from 'mqtt';
import { UploadGrantIssuer } from '@arteria/engine-s3';
import {
  GrantRequestV1,
  ProbeV1,
  RequestV1,
  RunEndV1,
  RunAbandonV1,
  RunOpenV1,
  SegmentV1,
  UNREADABLE_REQUEST_ID,
  allDevicesFilter,
  decodePayload,
  deviceTopic,
  encodePayload,
  epochNow,
  parseDeviceTopic,
  type DeviceAddress,
  type ErrorCode,
  type ProbeAnswerV1,
  type ResultV1,
  type SegmentEncoding,
} from '@arteria/protocol';
import { afterAll, beforeAll } from 'vitest';
import { BUCKET, objectBytes, startServers, type BrokerKind, type Servers } from './servers.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export interface SeenRequest {
  request: RequestV1;
  /** The message's MQTT 5 user properties (none under 3.1.1). */
  userProperties?: Record<string, string | string[]>;
  /** The object named by the request was complete (size and SHA-256 as declared) when the request arrived. */
  objectComplete: boolean;
}

/**
 * Plays the platform: takes every device's requests, checks the object they name, and
 * answers with a ResultV1 unless told to stay silent for that device.
 */
export class Responder {
  readonly seen: SeenRequest[] = [];
  /** Failures of the responder itself; a test checks it stays empty. */
  readonly errors: unknown[] = [];
  /** Devices whose requests are recorded but not answered. */
  readonly silent = new Set<string>();
  /** Per device: how many more requests to ignore before answering. */
  readonly ignoreNext = new Map<string, number>();
  /** Per device: how many more requests to answer `rejected` RATE_LIMITED (the platform's backpressure). */
  readonly rateLimitNext = new Map<string, number>();
  /** Upload grant requests seen (gateways without store keys). */
  readonly grantRequests: GrantRequestV1[] = [];
  readonly #client: MqttClient;
  readonly #s3: S3Client;
  /** Signs grants as the platform does, with the store's key the test holds. */
  readonly #grants: UploadGrantIssuer;
  readonly #listeners = new Set<() => void>();

  private constructor(client: MqttClient, s3: S3Client) {
    this.#client = client;
    this.#s3 = s3;
    this.#grants = new UploadGrantIssuer({ signer: s3, bucket: BUCKET });
  }

  static async start(servers: Pick<Servers, 'mqttUrl' | 'mqttVersion' | 's3'>): Promise<Responder> {
    const client = connect(servers.mqttUrl, { protocolVersion: servers.mqttVersion ?? 4, clientId: `platform-${Math.random().toString(16).slice(2)}`, clean: true, reconnectPeriod: 100 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const responder = new Responder(client, servers.s3);
    client.on('message', (topic, payload, packet) => {
      responder.#handle(topic, payload, packet.properties?.userProperties).catch((err: unknown) => responder.errors.push(err));
    });
    await client.subscribeAsync(allDevicesFilter('requests'), { qos: 1 });
    return responder;
  }

  requestsOf(device: string): SeenRequest[] {
    return this.seen.filter((s) => s.request.device === device);
  }

  /** Resolves once `predicate` holds for the requests seen so far. */
  async until(predicate: (seen: SeenRequest[]) => boolean): Promise<void> {
    if (predicate(this.seen)) return;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (!predicate(this.seen)) return;
        this.#listeners.delete(check);
        resolve();
      };
      this.#listeners.add(check);
    });
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true);
  }

  /** Algorithm specs the responder's admission probe answers refuse (UNKNOWN_ALGORITHM); every other one is accepted as 1.0.0. */
  readonly unknownAlgorithms = new Set<string>();
  /** Admission probes seen (the platform's dry-run check before a gateway keeps a config). */
  readonly probes: ProbeV1[] = [];
  /** true: probes are recorded but not answered (a platform that predates them, or one that is down). */
  silentProbes = false;
  /** What probe answers say the platform accepts, when asked (`capabilities`). */
  segmentEncodings: SegmentEncoding[] = ['br'];
  /** true: a probe that asks for capabilities is refused as a platform older than the question refuses it (INVALID_REQUEST, unknown key). */
  predatesCapabilities = false;
  /** How long a probe that asks for capabilities waits before its answer goes out (a slow platform or a long round trip). */
  capabilitiesDelayMs = 0;
  /** Probe answers that carry capabilities, counted as they go out. */
  capabilitiesAnswered = 0;

  async #handle(topic: string, payload: Buffer, userProperties: SeenRequest['userProperties']): Promise<void> {
    const grant = GrantRequestV1.safeParse(JSON.parse(payload.toString('utf8')));
    if (grant.success) {
      this.grantRequests.push(grant.data);
      const from = parseDeviceTopic(topic);
      await this.#client.publishAsync(deviceTopic(from, 'results'), encodePayload(await this.#grants.issue(from, grant.data)), { qos: 1 });
      return;
    }
    const probe = ProbeV1.safeParse(JSON.parse(payload.toString('utf8')));
    if (probe.success) {
      await this.#answerProbe(probe.data, parseDeviceTopic(topic));
      return;
    }
    const kind = (JSON.parse(payload.toString('utf8')) as { kind?: unknown }).kind;
    if (kind === 'run-open' || kind === 'segment' || kind === 'run-end') {
      await this.#segmented(payload);
      return;
    }
    if (kind === 'run-abandon') {
      await this.#abandon(payload);
      return;
    }
    const request = decodePayload(RequestV1, payload);
    const input = request.inputs[0];
    let objectComplete = false;
    if (input !== undefined) {
      try {
        const bytes = await objectBytes(this.#s3, input.uri);
        objectComplete = bytes.length === input.size && sha256(bytes) === input.sha256;
      } catch {
        objectComplete = false;
      }
    }
    this.seen.push({ request, objectComplete, ...(userProperties === undefined ? {} : { userProperties }) });
    for (const listener of [...this.#listeners]) listener();
    const ignore = this.ignoreNext.get(request.device) ?? 0;
    if (ignore > 0) {
      this.ignoreNext.set(request.device, ignore - 1);
      return;
    }
    if (this.silent.has(request.device)) return;
    const limited = this.rateLimitNext.get(request.device) ?? 0;
    if (limited > 0) {
      this.rateLimitNext.set(request.device, limited - 1);
      await this.#rateLimited(request);
      return;
    }
    await this.answer(request, { inputSha256: input?.sha256, objectComplete });
  }

  /** Steps of segmented runs seen, in arrival order; a run's end is answered `ok` with the frames and segments it counted. */
  readonly segmented: (RunOpenV1 | SegmentV1 | RunEndV1)[] = [];

  /**
   * Per device: how many more run-opens to lose (as if refused for the rate). A device listed
   * here has its runs tracked as the platform does: a segment or end of a run it holds no
   * open run for is answered `rejected` RUN_NOT_OPEN.
   */
  readonly loseRunOpens = new Map<string, number>();
  /** RUN_NOT_OPEN answers sent, per device. */
  readonly notOpenAnswers = new Map<string, number>();
  readonly #openRuns = new Set<string>();
  /**
   * Per device: a platform that cannot take its runs in segments answers each of their
   * messages `rejected` with this code: NOT_INCREMENTAL (an algorithm without the incremental
   * contract), INVALID_REQUEST (a platform that predates segmented runs: not a request).
   */
  readonly refuseSegmented = new Map<string, ErrorCode>();

  async #segmented(payload: Buffer): Promise<void> {
    const kind = (JSON.parse(payload.toString('utf8')) as { kind: string }).kind;
    const step = kind === 'run-open' ? decodePayload(RunOpenV1, payload) : kind === 'segment' ? decodePayload(SegmentV1, payload) : decodePayload(RunEndV1, payload);
    this.segmented.push(step);
    for (const listener of [...this.#listeners]) listener();
    const refusal = this.refuseSegmented.get(step.device);
    if (refusal !== undefined) {
      const refused: ResultV1 = {
        v: 1, requestId: step.kind === 'run-open' ? step.id : step.requestId, tenant: step.tenant, device: step.device, status: 'rejected',
        error: { code: refusal, message: 'this platform cannot take the run in segments' }, timings: { resultPublished: epochNow() },
      };
      await this.#client.publishAsync(deviceTopic(step, 'results'), encodePayload(refused), { qos: 1 });
      return;
    }
    const lose = this.loseRunOpens.get(step.device);
    if (lose !== undefined && step.kind === 'run-open') {
      if (lose > 0) this.loseRunOpens.set(step.device, lose - 1);
      else this.#openRuns.add(step.id);
      return;
    }
    if (lose !== undefined && step.kind !== 'run-open' && !this.#openRuns.has(step.requestId)) {
      this.notOpenAnswers.set(step.device, (this.notOpenAnswers.get(step.device) ?? 0) + 1);
      const notOpen: ResultV1 = {
        v: 1, requestId: step.requestId, tenant: step.tenant, device: step.device, status: 'rejected',
        error: { code: 'RUN_NOT_OPEN', message: `${step.requestId} is not a segmented run opened by ${step.tenant}/${step.device}` }, timings: { resultPublished: epochNow() },
      };
      await this.#client.publishAsync(deviceTopic(step, 'results'), encodePayload(notOpen), { qos: 1 });
      return;
    }
    if (step.kind !== 'run-end') return;
    await this.#publishOk(step.requestId, step, { frames: step.frames, segments: step.segments }, {});
  }

  /** Abandons of segmented runs seen, in arrival order; each is answered `failed` RUN_ABANDONED unless its device is in silentAbandons. */
  readonly abandons: RunAbandonV1[] = [];
  readonly silentAbandons = new Set<string>();

  async #abandon(payload: Buffer): Promise<void> {
    const abandon = decodePayload(RunAbandonV1, payload);
    this.abandons.push(abandon);
    for (const listener of [...this.#listeners]) listener();
    if (this.silentAbandons.has(abandon.device)) return;
    const result: ResultV1 = {
      v: 1, requestId: abandon.requestId, tenant: abandon.tenant, device: abandon.device, status: 'failed',
      error: { code: 'RUN_ABANDONED', message: `the device abandoned the run (${abandon.reason.code})` }, timings: { resultPublished: epochNow() },
    };
    await this.#client.publishAsync(deviceTopic(abandon, 'results'), encodePayload(result), { qos: 1 });
  }

  /** An `ok` result as the platform's contrast-injection would send it. */
  async #publishOk(requestId: string, to: DeviceAddress, output: unknown, timings: ResultV1['timings']): Promise<void> {
    const now = epochNow();
    const result: ResultV1 = {
      v: 1,
      requestId,
      tenant: to.tenant,
      device: to.device,
      status: 'ok',
      algorithm: { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'a'.repeat(64)}` },
      output,
      timings: { ...timings, enqueued: now, leased: now, fetched: now, computed: now, resultPublished: epochNow() },
    };
    await this.#client.publishAsync(deviceTopic(to, 'results'), encodePayload(result), { qos: 1 });
  }

  /** Refuses, as an ingest refuses what it cannot read, a message `to` never sent (under the placeholder id). */
  async refuseUnreadable(to: DeviceAddress, message: string): Promise<void> {
    const refusal: ResultV1 = { v: 1, requestId: UNREADABLE_REQUEST_ID, tenant: to.tenant, device: to.device, status: 'rejected', error: { code: 'INVALID_REQUEST', message }, timings: { resultPublished: epochNow() } };
    await this.#client.publishAsync(deviceTopic(to, 'results'), encodePayload(refusal), { qos: 1 });
  }

  async #answerProbe(probe: ProbeV1, from: DeviceAddress): Promise<void> {
    this.probes.push(probe);
    if (this.silentProbes) return;
    if (probe.capabilities === true && this.predatesCapabilities) {
      // As such an ingest refuses what it cannot read (a probe's id is no request id).
      await this.refuseUnreadable(from, 'Unrecognized key: "capabilities"');
      return;
    }
    const answer: ProbeAnswerV1 = {
      v: 1,
      kind: 'probe-answer',
      probeId: probe.id,
      tenant: from.tenant,
      device: from.device,
      algorithms: probe.algorithms.map((spec) =>
        this.unknownAlgorithms.has(spec)
          ? { spec, status: 'refused', error: { code: 'UNKNOWN_ALGORITHM', message: `no registered version of ${spec}` } }
          : { spec, status: 'accepted', version: '1.0.0' },
      ),
      ...(probe.capabilities === true ? { capabilities: { segmentEncodings: this.segmentEncodings } } : {}),
      at: epochNow(),
    };
    if (probe.capabilities === true && this.capabilitiesDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.capabilitiesDelayMs));
    await this.#client.publishAsync(deviceTopic(from, 'results'), encodePayload(answer), { qos: 1 });
    if (probe.capabilities === true) this.capabilitiesAnswered += 1;
  }

  async #rateLimited(request: RequestV1): Promise<void> {
    const result: ResultV1 = {
      v: 1,
      requestId: request.id,
      tenant: request.tenant,
      device: request.device,
      status: 'rejected',
      error: { code: 'RATE_LIMITED', message: `device ${request.tenant}/${request.device} sent too many new requests; retry after 100 ms` },
      timings: { ...request.timings, resultPublished: epochNow() },
    };
    await this.#client.publishAsync(deviceTopic(request, 'results'), encodePayload(result), { qos: 1 });
  }

  /** Publishes a result for `request` now, whatever the device's connection state. */
  async answer(request: RequestV1, output: unknown = {}): Promise<void> {
    await this.#publishOk(request.id, request, output, request.timings);
  }
}

/** A test file's servers and responder: started before its tests, closed after them. */
export function serversForFile(kind: BrokerKind = 'aedes'): { readonly servers: Servers; readonly responder: Responder } {
  let started: { servers: Servers; responder: Responder } | undefined;
  beforeAll(async () => {
    started = await startServersWithResponder(kind);
  });
  afterAll(async () => {
    await started?.servers.close();
  });
  const get = (): { servers: Servers; responder: Responder } => {
    if (started === undefined) throw new Error('the servers start in beforeAll: use them inside a test');
    return started;
  };
  return {
    get servers() {
      return get().servers;
    },
    get responder() {
      return get().responder;
    },
  };
}

/** The embedded broker and S3 store with a Responder playing the platform on them; `servers.close()` closes the responder first. */
export async function startServersWithResponder(kind: BrokerKind = 'aedes'): Promise<{ servers: Servers; responder: Responder }> {
  const servers = await startServers(kind);
  let responder: Responder;
  try {
    responder = await Responder.start(servers);
  } catch (err) {
    await servers.close();
    throw err;
  }
  return {
    servers: {
      ...servers,
      async close() {
        await responder.close();
        await servers.close();
      },
    },
    responder,
  };
}
