import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Gateway, createS3Client, type GatewayLogger, type GatewayResult } from '@arteria/gateway';
import { deviceToken, type ArteriaError } from '@arteria/protocol';
import { Lifecycle } from '@arteria/ports';
import type { S3Client } from '@aws-sdk/client-s3';
import { LatencyWindow } from './latency-window.js';
import { parseFleetOptions, type FleetOptions } from './options.js';
import { ProcedureModel } from './procedure-model.js';
import { RunFactory } from './run-factory.js';
import { SimulatedDevice, type DeviceSink } from './simulated-device.js';

export interface FleetStats {
  devices: number;
  inProcedure: number;
  sent: number;
  received: number;
  ok: number;
  rejected: number;
  failed: number;
  /** Errors the gateways reported to the fleet (not results). */
  errors: number;
  inFlight: number;
  /** End to end: run acquired at the gateway to result received, ms. */
  e2eP50Ms: number | undefined;
  e2eP99Ms: number | undefined;
  /** Platform overhead: e2e minus upload minus algorithm compute, ms. */
  overheadP50Ms: number | undefined;
  overheadP99Ms: number | undefined;
}

export interface FleetEvents {
  onResult?(device: string, result: GatewayResult): void;
  onError?(device: string, error: ArteriaError): void;
}

/**
 * K simulated imaging systems, each with its own gateway (own MQTT connection, own
 * outbox), sending synthetic XA runs over the real protocols.
 */
export class SimulatedFleet {
  readonly options: Readonly<FleetOptions>;
  readonly devices: SimulatedDevice[] = [];
  readonly #e2e = new LatencyWindow();
  readonly #overhead = new LatencyWindow();
  readonly #counts = { sent: 0, received: 0, ok: 0, rejected: 0, failed: 0, errors: 0 };
  readonly #s3: S3Client;
  readonly #factory = new RunFactory();
  readonly #life = new Lifecycle('simulated fleet');

  private constructor(options: Readonly<FleetOptions>, private readonly events: FleetEvents) {
    this.options = options;
    this.#s3 = createS3Client({ ...options.s3 });
  }

  static async start(input: unknown, events: FleetEvents = {}, logger?: GatewayLogger): Promise<SimulatedFleet> {
    const fleet = new SimulatedFleet(parseFleetOptions(input), events);
    await fleet.#life.start(() => fleet.#start(logger));
    return fleet;
  }

  async #start(logger: GatewayLogger | undefined): Promise<void> {
    const o = this.options;
    // Closed last: devices first (their gateways keep runs in their outboxes), then the run factory and the store client.
    this.#life.defer('store client', () => this.#s3.destroy());
    this.#life.defer('run factory', () => this.#factory.close());
    this.#life.defer('devices', async () => {
      await Promise.allSettled(this.devices.map((d) => d.close()));
    });
    await mkdir(o.dataDir, { recursive: true });
    const sink: DeviceSink = {
      sent: () => {
        this.#counts.sent += 1;
      },
      result: (device, result) => this.#record(device, result),
      error: (device, error) => {
        if (this.#life.state === 'closing' || this.#life.state === 'closed') return; // runs cut short by shutdown stay in their outboxes
        this.#counts.errors += 1;
        this.events.onError?.(device, error);
      },
    };
    for (let i = 0; i < o.devices; i += 1) {
      const name = `sim-${String(i + 1).padStart(3, '0')}`;
      const gateway = new Gateway(
        {
          tenant: o.tenant,
          device: name,
          token: deviceToken(o.tenantSecret, { tenant: o.tenant, device: name }),
          mqttUrl: o.mqttUrl,
          s3: o.s3,
          outboxPath: path.join(o.dataDir, `${name}.db`),
          algorithm: o.algorithms[0],
          resendIntervalMs: o.resendIntervalMs,
        },
        { s3Client: this.#s3, ...(logger ? { logger } : {}) },
      );
      const seed = o.seed * 7919 + i;
      const device = new SimulatedDevice(name, gateway, new ProcedureModel(o.profile, seed), o, sink, seed, this.#factory);
      this.devices.push(device);
      await gateway.start();
    }
    for (const device of this.devices) device.start();
  }

  stats(): FleetStats {
    const c = this.#counts;
    return {
      devices: this.devices.length,
      inProcedure: this.devices.filter((d) => d.inProcedure).length,
      ...c,
      inFlight: Math.max(0, c.sent - c.received),
      e2eP50Ms: this.#e2e.percentile(50),
      e2eP99Ms: this.#e2e.percentile(99),
      overheadP50Ms: this.#overhead.percentile(50),
      overheadP99Ms: this.#overhead.percentile(99),
    };
  }

  /** Every device sends `runsPerDevice` runs now: a burst on top of the procedure model. */
  burst(runsPerDevice: number): void {
    for (const device of this.devices) for (let i = 0; i < runsPerDevice; i += 1) device.sendRun();
  }

  /**
   * Stops every device from sending new runs and waits up to `timeoutMs` for the runs in
   * flight to be answered (a load test's drain); true when all were.
   */
  async stopSending(timeoutMs: number): Promise<boolean> {
    for (const device of this.devices) device.stopSending();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(this.devices.map((d) => d.settled())).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops all devices and their gateways. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  #record(device: string, result: GatewayResult): void {
    const c = this.#counts;
    c.received += 1;
    c[result.status] += 1;
    const t = result.timings;
    if (t.acquired !== undefined) this.#e2e.add(t.received - t.acquired);
    if (t.uploaded !== undefined) {
      const compute = t.computed !== undefined && t.fetched !== undefined ? t.computed - t.fetched : 0;
      this.#overhead.add(t.received - t.uploaded - compute);
    }
    this.events.onResult?.(device, result);
  }
}
