import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, smallRun, startServersWithResponder, type Servers } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/gateway-child.mjs', import.meta.url));

let servers: Servers;
beforeAll(async () => {
  ({ servers } = await startServersWithResponder());
});
afterAll(async () => servers?.close());

async function refusal(gateway: Gateway): Promise<ArteriaError> {
  const err = await gateway.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArteriaError);
  return err as ArteriaError;
}

// Two gateways on one outbox would both resume, upload and publish its runs: the second is refused, by name.
describe('one running gateway per outbox', () => {
  it('refuses a second gateway on the outbox in this process until the first closes', async () => {
    const options = gatewayOptions(servers, 'lock-same-process');
    // Closed at the end whatever happens (close is memoised: closing twice is one close).
    await using first = new Gateway(options, { logger: memoryLogger() });
    await first.start();
    await using second = new Gateway(options, { logger: memoryLogger() });
    const err = await refusal(second);
    expect(err.code).toBe('GATEWAY_ALREADY_RUNNING');
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toContain(options.outboxPath);
    // The first goes on undisturbed: the refused one touched nothing of the outbox.
    expect((await first.send({ bytes: smallRun(71), name: 'run.dcm' })).status).toBe('ok');
    await first.close();
    await using third = new Gateway(options, { logger: memoryLogger() });
    await third.start();
    expect(third.state).toBe('running');
  });

  it('refuses while a gateway process holds the outbox, and takes it over once that process is killed', async () => {
    const options = gatewayOptions(servers, 'lock-other-process');
    const child = spawn(process.execPath, [CHILD, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout });
      for await (const line of lines) if ((JSON.parse(line) as { type: string }).type === 'started') break;

      await using refused = new Gateway(options, { logger: memoryLogger() });
      const err = await refusal(refused);
      expect(err.code).toBe('GATEWAY_ALREADY_RUNNING');
      expect(err.message).toContain(`pid ${child.pid}`);
    } finally {
      // A SIGKILL leaves no lock behind: the operating system lets go of it with the process.
      child.kill('SIGKILL');
      await exited;
    }
    await using next = new Gateway(options, { logger: memoryLogger() });
    await next.start();
    expect((await next.send({ bytes: smallRun(72), name: 'run.dcm' })).status).toBe('ok');
  });
});
