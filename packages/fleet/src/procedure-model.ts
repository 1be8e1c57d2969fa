import { mulberry32, uniform } from '@arteria/dicom';

export interface ProcedureProfile {
  /** Mean time a device sits idle between procedures. */
  meanIdleMs: number;
  /** Mean length of a procedure. */
  meanProcedureMs: number;
  /** Mean time between runs while in a procedure (runs come in bursts, not evenly). */
  meanRunIntervalMs: number;
}

export type DeviceEvent = { kind: 'procedure-start' } | { kind: 'procedure-end' } | { kind: 'run' };

/**
 * How an interventional X-ray system behaves: idle most of the time, then a procedure in
 * which runs come every few seconds to minutes. An alternating renewal process with
 * exponential holding times; inside a procedure runs are Poisson. Seeded: the same seed
 * gives the same day.
 */
export class ProcedureModel {
  readonly #random: () => number;
  readonly #profile: ProcedureProfile;
  #inProcedure = false;
  #procedureEndsAt = 0;

  constructor(profile: ProcedureProfile, seed: number) {
    this.#profile = profile;
    this.#random = uniform(mulberry32(seed));
  }

  get inProcedure(): boolean {
    return this.#inProcedure;
  }

  /** Starts a device in a procedure with probability equal to the long-run procedure share. */
  initialise(now: number): void {
    const { meanIdleMs, meanProcedureMs } = this.#profile;
    if (this.#random() < meanProcedureMs / (meanIdleMs + meanProcedureMs)) {
      this.#inProcedure = true;
      this.#procedureEndsAt = now + this.#exp(meanProcedureMs);
    }
  }

  /** The next event after `now` and when it happens. */
  next(now: number): { at: number; event: DeviceEvent } {
    if (!this.#inProcedure) {
      this.#inProcedure = true;
      const at = now + this.#exp(this.#profile.meanIdleMs);
      this.#procedureEndsAt = at + this.#exp(this.#profile.meanProcedureMs);
      return { at, event: { kind: 'procedure-start' } };
    }
    const runAt = now + this.#exp(this.#profile.meanRunIntervalMs);
    if (runAt < this.#procedureEndsAt) return { at: runAt, event: { kind: 'run' } };
    this.#inProcedure = false;
    return { at: this.#procedureEndsAt, event: { kind: 'procedure-end' } };
  }

  /** A fresh uniform draw from the device's own stream (run contents, sizes). */
  draw(): number {
    return this.#random();
  }

  #exp(mean: number): number {
    return -Math.log(1 - this.#random()) * mean;
  }
}
