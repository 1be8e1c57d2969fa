import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { isRunning, killAndWait } from './child.js';

const CLI = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

/** When a SIGKILL was sent and when its process had exited (epoch ms). */
export interface KillRecord {
  sentAt: number;
  exitedAt: number;
}

/**
 * An `arteria ingest` or `arteria worker` process started with the real CLI, its output
 * kept (the fault rows read its connection log lines).
 */
export class RoleProcess {
  readonly output: string[] = [];
  #child: ChildProcess | undefined;
  url = '';
  /** Operator token for /api/* (the ops surface needs one). */
  readonly #token = randomBytes(24).toString('hex');

  constructor(
    readonly role: 'ingest' | 'worker',
    readonly instanceId: string,
    private readonly configFile: string,
    private readonly env: Record<string, string> = {},
  ) {}

  get running(): boolean {
    return isRunning(this.#child);
  }

  /** Starts the process and resolves once it printed its ready line. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, [CLI, this.role, '--config', this.configFile, '--instance-id', this.instanceId], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ARTERIA_HTTP_TOKEN: this.#token, ...this.env } });
    this.#child = child;
    child.stderr?.on('data', (chunk: Buffer) => this.#keep(chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        this.#keep(text);
        const match = /ready (http:\/\/\S+)/.exec(text);
        if (match?.[1] !== undefined) {
          this.url = match[1];
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`${this.instanceId} exited with ${code ?? 'a signal'} before it was ready:\n${this.output.join('')}`)));
    });
  }

  #keep(text: string): void {
    this.output.push(text);
    if (this.output.length > 2_000) this.output.splice(0, 1_000);
  }

  async status<T = Record<string, unknown>>(): Promise<T> {
    const res = await fetch(`${this.url}/api/status`, { headers: { authorization: `Bearer ${this.#token}` } });
    return (await res.json()) as T;
  }

  /** Whether /readyz answers 200 (false when the process does not answer at all). */
  async ready(): Promise<boolean> {
    try {
      return (await fetch(`${this.url}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }

  /** Each SIGKILL of this process. */
  readonly kills: KillRecord[] = [];

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const sentAt = Date.now();
    const running = isRunning(this.#child);
    await killAndWait(this.#child, signal);
    if (signal === 'SIGKILL' && running) this.kills.push({ sentAt, exitedAt: Date.now() });
  }

  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }
}
