import { ROSTER_BEAT_MS, type WorkerHeartbeat, type WorkerPoolName, type WorkerRoster } from '@arteria/ports';
import type { Logger } from '@arteria/telemetry';

type Snapshot = Omit<WorkerHeartbeat, 'at' | 'state'>;

/**
 * A worker process's entry in the roster: written at start, every ROSTER_BEAT_MS, as
 * `draining` the moment it starts to drain, and removed at close. A failed write is
 * logged once per outage and retried at the next beat: the roster is for operators, and a
 * worker never stops working because it could not say so.
 */
export class WorkerHeartbeatWriter {
  readonly #roster: WorkerRoster;
  readonly #snapshot: () => Snapshot;
  readonly #logger: Logger | undefined;
  #state: WorkerHeartbeat['state'] = 'running';
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #writing: Promise<void> = Promise.resolve();

  constructor(roster: WorkerRoster, snapshot: () => Snapshot, logger?: Logger, intervalMs = ROSTER_BEAT_MS) {
    this.#roster = roster;
    this.#snapshot = snapshot;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.beat(), intervalMs);
    this.#timer.unref();
  }

  /** Writes the entry now (serialised: a beat never overtakes a later one). */
  beat(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#write());
    return this.#writing;
  }

  /** Says the worker drains (leases no more), at once. */
  draining(): Promise<void> {
    this.#state = 'draining';
    return this.beat();
  }

  /** Stops beating and removes the entry. */
  async close(instanceId: string): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    try {
      await this.#roster.leave(instanceId);
    } catch (err) {
      this.#logger?.warn({ component: 'roster', error: (err as Error).message }, 'could not remove this worker from the roster; it drops out when its heartbeat is stale');
    }
  }

  async #write(): Promise<void> {
    try {
      await this.#roster.beat({ ...this.#snapshot(), state: this.#state, at: Date.now() });
      if (this.#failing) this.#logger?.info({ component: 'roster' }, 'worker heartbeat written again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#logger?.warn({ component: 'roster', error: (err as Error).message }, 'could not write the worker heartbeat; retrying at the next beat');
      this.#failing = true;
    }
  }
}

/**
 * The autoscaler's desired count per pool in the roster: written at each decision and
 * again every ROSTER_BEAT_MS (a decision interval may be longer than the stale age), so
 * the dashboard draws "desired" beside "actual". Failures are logged once per outage.
 */
export class DesiredCountWriter {
  readonly #roster: WorkerRoster;
  readonly #instanceId: string;
  readonly #logger: Logger | undefined;
  readonly #last = new Map<WorkerPoolName, number>();
  readonly #timer: NodeJS.Timeout;
  #failing = false;

  constructor(roster: WorkerRoster, instanceId: string, logger?: Logger, intervalMs = ROSTER_BEAT_MS) {
    this.#roster = roster;
    this.#instanceId = instanceId;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.#writeAll(), intervalMs);
    this.#timer.unref();
  }

  /** A pool's count was decided. */
  decided(pool: WorkerPoolName, desired: number): void {
    this.#last.set(pool, desired);
    void this.#write(pool, desired);
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #writeAll(): Promise<void> {
    for (const [pool, desired] of this.#last) await this.#write(pool, desired);
  }

  async #write(pool: WorkerPoolName, desired: number): Promise<void> {
    try {
      await this.#roster.recordDesired({ pool, desired, instanceId: this.#instanceId, at: Date.now() });
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#logger?.warn({ component: 'roster', error: (err as Error).message }, 'could not record the desired worker count; retrying');
      this.#failing = true;
    }
  }
}
