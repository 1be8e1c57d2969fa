import type { Gateway, GatewayResult } from '@arteria/gateway';
import { toArteriaError, type ArteriaError } from '@arteria/protocol';
import type { FleetOptions } from './options.js';
import type { ProcedureModel } from './procedure-model.js';
import type { RunFactory } from './run-factory.js';
import type { RunRecipe } from './run-recipe.js';

export interface DeviceSink {
  sent(device: string): void;
  result(device: string, result: GatewayResult): void;
  error(device: string, error: ArteriaError): void;
}

/**
 * One simulated imaging system: follows its procedure model in real time, synthesizes a
 * multi-frame XA run for each run event and hands it to its own gateway, exactly as the
 * modality would.
 */
export class SimulatedDevice {
  #timer: NodeJS.Timeout | undefined;
  #runs = 0;
  #stopped = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    readonly name: string,
    readonly gateway: Gateway,
    private readonly model: ProcedureModel,
    private readonly options: Readonly<FleetOptions>,
    private readonly sink: DeviceSink,
    private readonly seed: number,
    private readonly factory: RunFactory,
  ) {}

  get inProcedure(): boolean {
    return this.model.inProcedure;
  }

  start(): void {
    const now = Date.now();
    this.model.initialise(now);
    if (this.model.inProcedure) this.#announce(true);
    this.#schedule(now);
  }

  /** Sends one run now, whatever the procedure model says (bursts, tests). */
  sendRun(): void {
    const { run, algorithms } = this.options;
    const index = this.#runs++;
    const algorithm = algorithms[Math.floor(this.model.draw() * algorithms.length)] ?? algorithms[0] ?? '';
    const recipe: RunRecipe = {
      kind: algorithm.startsWith('balloon-inflation@') ? 'balloon' : 'contrast',
      seed: this.seed * 100_003 + index,
      rows: run.rows,
      columns: run.columns,
      frames: run.frames,
      frameRateHz: run.frameRateHz,
      bitsStored: run.bitsStored,
      withEvent: this.model.draw() < run.eventShare,
    };
    this.sink.sent(this.name);
    const sending = this.factory
      .render(recipe)
      .then((bytes) => this.gateway.send({ bytes, name: `${this.name}-run-${index}.dcm` }, { algorithm }))
      .then(
        (result) => this.sink.result(this.name, result),
        (err: unknown) => this.sink.error(this.name, toArteriaError(err)),
      );
    this.#inFlight.add(sending);
    void sending.finally(() => this.#inFlight.delete(sending));
  }

  /** Stops generating runs; the gateway stays up, so runs in flight still get their results. */
  stopSending(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Resolves when every run sent so far has its result (or error). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops generating runs and closes the gateway (unanswered runs stay in its outbox). */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.gateway.close();
    await Promise.allSettled([...this.#inFlight]);
  }

  #schedule(now: number): void {
    if (this.#stopped) return;
    const { at, event } = this.model.next(now);
    this.#timer = setTimeout(() => {
      if (event.kind === 'run') this.sendRun();
      else this.#announce(event.kind === 'procedure-start');
      this.#schedule(at);
    }, Math.max(0, at - Date.now()));
  }

  #announce(inProcedure: boolean): void {
    this.gateway.setInProcedure(inProcedure).catch((err: unknown) => this.sink.error(this.name, toArteriaError(err)));
  }
}
