// A gateway in a process of its own, so its peak RSS is its own (bench/src/segmented.ts,
// bench/src/link.ts). argv[2]: JSON GatewayChildOptions. It answers each IPC message
// (one run: streamed frame by frame, or the whole file) with the run's timestamps
// (epoch ms) and the process's peak RSS so far.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gateway } from '@arteria/gateway';
import { deviceToken, type SegmentEncodingSetting } from '@arteria/protocol';

export interface GatewayChildOptions {
  mqttUrl: string;
  s3Endpoint: string;
  region: string;
  dir: string;
  tenant: string;
  tenantSecret: string;
  /** Default bench-gateway. */
  device?: string;
  /** The gateway's segmentWholeFilesOverBytes (its default when absent; 0: every whole file by the one-shot protocol). */
  segmentWholeFilesOverBytes?: number;
  /** The gateway's wholeFileSegmentBytes (its default when absent). */
  wholeFileSegmentBytes?: number;
  /** The gateway's segmentEncoding; none when absent (not the gateway's default, auto), so that the rows stay comparable with earlier ones and the encoded rows name theirs. */
  segmentEncoding?: SegmentEncodingSetting;
}

export type GatewayAsk =
  | { kind: 'stream'; file: string; headerBytes: number; frames: number; frameBytes: number; fps: number; framesPerSegment: number; algorithm: string }
  | { kind: 'whole'; file: string; algorithm: string };

export interface GatewayAnswer {
  status: string;
  startAt: number;
  /** Streamed: the last frame handed to the gateway. Whole: send() called (the run was complete). */
  lastFrameAt: number;
  uploadedAt?: number;
  /** Whole: when each part or segment was stored (the gateway's progress events), epoch ms. */
  storedAt?: number[];
  resultAt: number;
  partials: number;
  peakRssMb: number;
  /** The result's timings (epoch ms): where the time after the last frame went. */
  timings?: Record<string, number>;
  error?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as GatewayChildOptions;
const device = options.device ?? 'bench-gateway';
const gateway = new Gateway({
  tenant: options.tenant,
  device,
  token: deviceToken(options.tenantSecret, { tenant: options.tenant, device }),
  mqttUrl: options.mqttUrl,
  // No store key: upload grants over MQTT, as in production.
  s3: { endpoint: options.s3Endpoint, region: options.region, bucket: 'arteria-runs' },
  outboxPath: path.join(options.dir, `${device}.sqlite`),
  ...(options.segmentWholeFilesOverBytes === undefined ? {} : { segmentWholeFilesOverBytes: options.segmentWholeFilesOverBytes }),
  ...(options.wholeFileSegmentBytes === undefined ? {} : { wholeFileSegmentBytes: options.wholeFileSegmentBytes }),
  segmentEncoding: options.segmentEncoding ?? 'none',
  // Rounds send the same files again, to be uploaded and computed again: never answered from the outbox.
  answerAgainWithinMs: 0,
  // The synthetic runs declare their de-identification; the run's own bytes go up (de-identification has its own figures).
  deidentification: { enabled: false },
});
await gateway.start();

const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

async function streamed(ask: Extract<GatewayAsk, { kind: 'stream' }>): Promise<GatewayAnswer> {
  const file = await open(ask.file, 'r');
  try {
    const header = Buffer.alloc(ask.headerBytes);
    await file.read(header, 0, ask.headerBytes, 0);
    let partials = 0;
    const source = await gateway.openFrameSource(header, { algorithm: ask.algorithm, framesPerSegment: ask.framesPerSegment, onPartial: () => (partials += 1) });
    const frame = Buffer.alloc(ask.frameBytes);
    const startAt = Date.now();
    let lastFrameAt = startAt;
    // Frames as the modality acquires them: frame f is ready at start + f / fps (0: as fast as the gateway takes them).
    // Each is pushed when ready, without waiting for the push before (pushes keep their order; each resolves once its
    // frame is durable, and the gateway shares its fsyncs across the frames in flight).
    const pushed: Promise<void>[] = [];
    for (let f = 0; f < ask.frames; f++) {
      const due = ask.fps > 0 ? startAt + (f * 1000) / ask.fps : 0;
      if (due > Date.now()) await sleep(due - Date.now());
      await file.read(frame, 0, ask.frameBytes, ask.headerBytes + f * ask.frameBytes);
      lastFrameAt = Date.now();
      // Copied: the buffer is reused for the next frame.
      const push = source.push(Buffer.from(frame));
      push.catch(() => undefined); // awaited below, with the others
      pushed.push(push);
      // At fps 0, as fast as the gateway takes them: not more than a segment's worth ahead of it.
      if (ask.fps === 0 && pushed.length >= ask.framesPerSegment) await Promise.all(pushed.splice(0));
    }
    await Promise.all(pushed);
    await source.end();
    const result = await source.result;
    return { status: result.status, startAt, lastFrameAt, resultAt: Date.now(), partials, peakRssMb: peakRssMb(), timings: result.timings, ...(result.error ? { error: `${result.error.code}: ${result.error.message}` } : {}) };
  } finally {
    await file.close();
  }
}

async function whole(ask: Extract<GatewayAsk, { kind: 'whole' }>): Promise<GatewayAnswer> {
  let uploadedAt: number | undefined;
  const storedAt: number[] = [];
  const unsubscribes = [
    gateway.on('entry', (event: { state: string }) => {
      if (event.state === 'uploaded') uploadedAt ??= Date.now();
    }),
    gateway.on('progress', () => void storedAt.push(Date.now())),
  ];
  try {
    const startAt = Date.now();
    const result = await gateway.send(ask.file, { algorithm: ask.algorithm });
    return { status: result.status, startAt, lastFrameAt: startAt, ...(uploadedAt === undefined ? {} : { uploadedAt }), storedAt, resultAt: Date.now(), partials: 0, peakRssMb: peakRssMb(), timings: result.timings, ...(result.error ? { error: `${result.error.code}: ${result.error.message}` } : {}) };
  } finally {
    for (const unsubscribe of unsubscribes) unsubscribe();
  }
}

process.on('message', (ask: GatewayAsk) => {
  (ask.kind === 'stream' ? streamed(ask) : whole(ask)).then(
    (answer) => process.send?.(answer),
    (err: unknown) => process.send?.({ status: 'error', error: String(err), startAt: 0, lastFrameAt: 0, resultAt: 0, partials: 0, peakRssMb: peakRssMb() } satisfies GatewayAnswer),
  );
});
process.once('SIGTERM', () => {
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
process.send?.({ ready: true });
