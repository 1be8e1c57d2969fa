import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const CHILD = fileURLToPath(new URL('./sqs-server-child.js', import.meta.url));

/**
 * An SQS-API server (local-aws-sqs 2.0.2: JSON and Query protocols, visibility timeouts,
 * redrive policies) in a child process on a free loopback port. Its state is in memory:
 * it lasts until stop().
 */
export class TestSqsServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<TestSqsServer> {
    const port = await freePort();
    const child = fork(CHILD, [String(port)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`SQS-API test server exited with ${String(code)} before listening on ${port}`)));
    });
    return new TestSqsServer(child, port);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Options for an SQS client of this server (any credentials are accepted). */
  get clientOptions(): { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string } {
    return { endpoint: this.endpoint, region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' };
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}
