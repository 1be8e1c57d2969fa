import { Lifecycle, type LifecycleState } from '@arteria/protocol';
import { WITHDRAWAL_FORMAT, judgeCanary, type CanaryWithdrawal, type RequestLedger } from '@arteria/ports';
import { quietLogger, securitySink, type Logger } from '@arteria/telemetry';
import type { EntitlementPolicy } from './entitlements.js';

/** Where withdrawals are kept, so that every ingest process and every restart honours them. */
export interface WithdrawalStore {
  putWithdrawal(withdrawal: CanaryWithdrawal): Promise<void>;
  listWithdrawals(): Promise<CanaryWithdrawal[]>;
}

export interface CanaryGuardOptions {
  ledger: RequestLedger;
  policy: EntitlementPolicy;
  store: WithdrawalStore;
  /** Recorded as who withdrew a canary. */
  instance: string;
  /** Recent ledger entries judged at each check. */
  window: number;
  intervalMs: number;
  logger?: Logger;
  onError?: (error: Error) => void;
}

/**
 * Watches every canary that has rollback bounds: at each check it reads the recent
 * ledger window (shared by every ingest process, so each reaches the same verdict), and
 * withdraws a canary whose results regress beyond its bounds: from then on the tenant's
 * devices all get the versions below it. The withdrawal is stored (other ingest processes
 * pick it up at their next check, restarts at start) and logged as a security event.
 */
export class CanaryGuard implements AsyncDisposable {
  readonly #life = new Lifecycle('the canary guard');
  #checking: Promise<CanaryWithdrawal[]> | undefined;
  readonly #log: Logger;

  constructor(private readonly options: CanaryGuardOptions) {
    this.#log = options.logger ?? quietLogger();
  }

  /** Whether any canary has rollback bounds (nothing to watch otherwise). */
  get watching(): boolean {
    return this.options.policy.canaries().some((c) => c.rollback !== undefined);
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Applies stored withdrawals, then checks every `intervalMs`. Starts once (ILLEGAL_STATE after). */
  start(): Promise<void> {
    return this.#life.start(async () => {
      await this.#applyStored();
      const timer = setInterval(() => {
        this.check().catch((err: unknown) => this.options.onError?.(err as Error));
      }, this.options.intervalMs);
      timer.unref();
      this.#life.defer('checks', async () => {
        clearInterval(timer);
        // A check in progress finishes; its outcome went to whoever awaited it.
        await this.#checking?.catch(() => undefined);
      });
    });
  }

  /** One check: stored withdrawals applied, every watched canary judged; returns what it withdrew. ILLEGAL_STATE once closing. */
  check(): Promise<CanaryWithdrawal[]> {
    if (this.#life.state === 'closing' || this.#life.state === 'closed') return Promise.reject(this.#life.illegal('check the canaries'));
    // One check at a time: a slow ledger read must not stack them up.
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  /** Stops checking and waits for a check in progress; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #applyStored(): Promise<void> {
    for (const w of await this.options.store.listWithdrawals()) this.options.policy.withdraw(w.tenant, w.algorithm, w.version);
  }

  async #check(): Promise<CanaryWithdrawal[]> {
    const { policy, ledger, store } = this.options;
    await this.#applyStored();
    const watched = policy.canaries().filter((c) => c.rollback !== undefined && c.percent > 0 && !policy.isWithdrawn(c.tenant, c.algorithm, c.version));
    if (watched.length === 0) return [];
    const results = (await ledger.recent(this.options.window)).flatMap((e) => (e.state === 'completed' ? [e.result] : []));
    const withdrawn: CanaryWithdrawal[] = [];
    for (const canary of watched) {
      if (canary.rollback === undefined) continue;
      const verdict = judgeCanary(results, canary.tenant, canary.algorithm, canary.version, canary.rollback);
      if (verdict.regression === undefined) continue;
      const withdrawal: CanaryWithdrawal = {
        format: WITHDRAWAL_FORMAT,
        tenant: canary.tenant,
        algorithm: canary.algorithm,
        version: canary.version,
        at: new Date().toISOString(),
        reason: verdict.regression,
        canary: verdict.canary,
        others: verdict.others,
        by: this.options.instance,
      };
      // Withdrawn here first: this process stops handing it out even if the store write fails.
      policy.withdraw(canary.tenant, canary.algorithm, canary.version);
      securitySink(this.#log)({ event: 'canary-withdrawn', identity: `${canary.tenant}/${canary.algorithm}@${canary.version}`, reason: verdict.regression });
      await store.putWithdrawal(withdrawal);
      withdrawn.push(withdrawal);
    }
    return withdrawn;
  }
}
