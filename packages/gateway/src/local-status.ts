import { renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { epochNow } from '@arteria/protocol';
import type { DeviceConnection } from './connection/connection.js';
import { errorFields, type GatewayLogger } from './log.js';
import type { Outbox } from './outbox/outbox.js';

/**
 * What a running gateway says about itself, next to its outbox, for `arteria-gateway
 * doctor`: the broker binds one session to the device's client id, so the doctor asks
 * here instead of connecting as the device while the gateway holds that session.
 */
export const LocalStatusV1 = z.object({
  v: z.literal(1),
  pid: z.number().int().positive(),
  state: z.enum(['running', 'stopped']),
  startedAt: z.number(),
  updatedAt: z.number(),
  /** How often it is rewritten while running: an older file belongs to a gateway that died. */
  refreshMs: z.number().int().positive(),
  broker: z.object({
    url: z.string(),
    connected: z.boolean(),
    /** The MQTT version in use ('5', or '3.1.1' with a broker that refused 5); absent in files of older gateways. */
    protocol: z.enum(['5', '3.1.1']).optional(),
    since: z.number().optional(),
    lastError: z.string().optional(),
  }),
  outboxDepth: z.number().int().nonnegative(),
});
export type LocalStatusV1 = z.infer<typeof LocalStatusV1>;

export const localStatusPath = (outboxPath: string): string => `${outboxPath}.status.json`;
const REFRESH_MS = 15_000;

/** Keeps the status file current: at start, on every connection change or error, every 15 s, and at close. */
export class LocalStatusFile {
  readonly #path: string;
  readonly #connection: DeviceConnection;
  readonly #outbox: Outbox;
  readonly #brokerUrl: string;
  readonly #logger: GatewayLogger;
  readonly #startedAt = epochNow();
  readonly #unsubscribe: (() => void)[] = [];
  #since: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #warned = false;

  constructor(outboxPath: string, brokerUrl: string, connection: DeviceConnection, outbox: Outbox, logger: GatewayLogger) {
    this.#path = localStatusPath(outboxPath);
    this.#brokerUrl = brokerUrl;
    this.#connection = connection;
    this.#outbox = outbox;
    this.#logger = logger;
  }

  start(): void {
    const changed = (): void => {
      this.#since = epochNow();
      this.#write('running');
    };
    this.#unsubscribe.push(
      this.#connection.on('ready', changed),
      this.#connection.on('down', changed),
      this.#connection.on('error', () => this.#write('running')),
    );
    this.#timer = setInterval(() => this.#write('running'), REFRESH_MS);
    this.#write('running');
  }

  /** Says the gateway stopped (before its outbox closes). */
  stop(): void {
    clearInterval(this.#timer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#write('stopped');
  }

  #write(state: LocalStatusV1['state']): void {
    const connection = this.#connection;
    const status: LocalStatusV1 = {
      v: 1,
      pid: process.pid,
      state,
      startedAt: this.#startedAt,
      updatedAt: epochNow(),
      refreshMs: REFRESH_MS,
      broker: {
        url: this.#brokerUrl,
        connected: connection.state === 'ready',
        protocol: connection.protocolVersion === 5 ? '5' : '3.1.1',
        ...(this.#since !== undefined && { since: this.#since }),
        ...(connection.lastError !== undefined && { lastError: connection.lastError }),
      },
      outboxDepth: this.#outbox.liveCount(),
    };
    // Synchronous (a small file, rarely): once start() goes on, the file says the gateway
    // runs, so a doctor never connects as the device beside it. Written whole and renamed
    // into place: a reader never sees half a file.
    try {
      writeFileSync(`${this.#path}.tmp`, `${JSON.stringify(status)}\n`, { mode: 0o644 });
      renameSync(`${this.#path}.tmp`, this.#path);
    } catch (err) {
      if (!this.#warned) this.#logger.warn('could not write the local status file (arteria-gateway doctor reads it)', { path: this.#path, ...errorFields(err) });
      this.#warned = true;
    }
  }
}

/**
 * The status of the gateway on this outbox, if one is running: its file says running, its
 * process exists, and the file is fresh. Undefined when none is (or none ever wrote one).
 */
export async function runningGateway(outboxPath: string, now = epochNow()): Promise<LocalStatusV1 | undefined> {
  let status: LocalStatusV1;
  try {
    status = LocalStatusV1.parse(JSON.parse(await readFile(localStatusPath(outboxPath), 'utf8')));
  } catch {
    return undefined; // absent or unreadable: no gateway says it runs here
  }
  if (status.state !== 'running' || now - status.updatedAt > 3 * status.refreshMs + 5_000) return undefined;
  try {
    process.kill(status.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined; // EPERM: it exists, as another user
  }
  return status;
}
