import type { PlatformStatus } from '@arteria/platform';
import type { FleetStats } from '@arteria/fleet';

const ms = (value: number | undefined): string => (value === undefined ? '-' : value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`);

/** One line that says whether the loop is healthy. */
export function formatStatus(platform: PlatformStatus, fleet: FleetStats | undefined): string {
  const parts = [
    `devices ${platform.devices.online} online (${platform.devices.inProcedure} in procedure)`,
    `requests ${platform.requests.accepted} (ok ${platform.requests.ok}, rejected ${platform.requests.rejected}, failed ${platform.requests.failed}), refused ${platform.requests.refused}`,
    `in flight ${platform.requests.accepted - platform.requests.completed}`,
    `queue ${platform.queue.ready} ready ${platform.queue.inFlight} leased${platform.queue.deadLettered > 0 ? ` ${platform.queue.deadLettered} dead` : ''}`,
    `workers ${platform.workers.busy}/${platform.workers.size} busy`,
  ];
  if (fleet) parts.push(`e2e p50 ${ms(fleet.e2eP50Ms)} p99 ${ms(fleet.e2eP99Ms)}`, `overhead p99 ${ms(fleet.overheadP99Ms)}`);
  return parts.join(' | ');
}

/**
 * Redraws a status line in place on a terminal; elsewhere (CI logs, pipes) prints it
 * every few seconds. Log lines are written above it.
 */
export class StatusLine {
  readonly #tty: boolean;
  #last = '';
  #lastPrinted = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {
    this.#tty = stream.isTTY;
  }

  update(line: string): void {
    this.#last = line;
    if (this.#tty) {
      const width = this.stream.columns || 160;
      this.stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
    } else if (Date.now() - this.#lastPrinted >= 5000) {
      this.#lastPrinted = Date.now();
      this.stream.write(`${line}\n`);
    }
  }

  log(message: string): void {
    if (this.#tty) this.stream.write(`\r\x1b[2K${message}\n${this.#last}`);
    else this.stream.write(`${message}\n`);
  }

  end(): void {
    if (this.#tty) this.stream.write('\n');
  }
}
