import { spawn, type ChildProcess } from 'node:child_process';
import { isRunning, killAndWait } from './child.js';
import { accepts, sleep } from './net.js';

/**
 * A server the fault rows stop and start again: same command, same port, same files.
 * `kill('SIGKILL')` is a crash, `kill('SIGTERM')` an orderly stop.
 */
export class ServerProcess {
  #child: ChildProcess | undefined;
  #stderr = '';

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: readonly string[],
    readonly port: number,
  ) {}

  get running(): boolean {
    return isRunning(this.#child);
  }

  /** Starts the process and waits until it accepts TCP connections on its port. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const child = spawn(this.command, [...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4_000);
    });
    this.#child = child;
    for (let i = 0; i < 400; i++) {
      if (child.exitCode !== null) throw new Error(`${this.name} exited with ${child.exitCode}: ${this.#stderr}`);
      if (await accepts(this.port)) return;
      await sleep(25);
    }
    throw new Error(`${this.name} did not listen on ${this.port}: ${this.#stderr}`);
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    await killAndWait(child, signal);
  }

  /** Sends a signal without waiting (SIGHUP: reload, SIGSTOP/SIGCONT: pause). */
  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  async restart(signal: NodeJS.Signals): Promise<void> {
    await this.kill(signal);
    await this.start();
  }
}
