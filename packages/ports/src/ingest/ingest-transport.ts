import { Lifecycle, type LifecycleState } from '@arteria/protocol';

/**
 * The lifecycle every ingest transport shares (MQTT ingest, NATS capture ingest): scale-in
 * drains (stop taking new requests, finish those in hand for up to a timeout, so their
 * acknowledgements go out), and close drains first, then ends the connection. Both are
 * memoised, a close during a drain waits for it, and use after close is ILLEGAL_STATE.
 */
export abstract class IngestTransport implements AsyncDisposable {
  protected readonly life: Lifecycle;

  protected constructor(name: string) {
    this.life = new Lifecycle(name);
  }

  get state(): LifecycleState {
    return this.life.state;
  }

  /** Stops taking new requests and finishes those in hand, for up to `timeoutMs`; memoised. */
  drain(timeoutMs = 10_000): Promise<void> {
    return this.life.drain(() => this.settle(timeoutMs));
  }

  /** Drains (see drain()), then closes what the transport opened; memoised. */
  close(timeoutMs = 10_000): Promise<void> {
    return this.life.drainAndClose(() => this.settle(timeoutMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The transport's own way to stop taking requests and let those in hand finish. */
  protected abstract settle(timeoutMs: number): Promise<void>;
}
