import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { Gateway, type GatewayEvents } from '@arteria/gateway';
import { freePort, gatewayOptions, memoryLogger, objectBytes, smallRun, startServersWithResponder, type BrokerKind, type Responder, type Servers } from './helpers.js';

/** The next event of a kind, as a promise (subscribe before starting the gateway). */
function next<K extends keyof GatewayEvents>(gateway: Gateway, event: K): Promise<GatewayEvents[K]> {
  return new Promise((resolve) => {
    const off = gateway.on(event, (payload) => {
      off();
      resolve(payload);
    });
  });
}

/** The MQTT version and session of each connection the gateway made, from its log. */
const connections = (logger: ReturnType<typeof memoryLogger>): { protocol: unknown; sessionPresent: unknown }[] =>
  logger.lines.filter((l) => l.message === 'MQTT connection ready').map((l) => ({ protocol: l.fields?.protocol, sessionPresent: l.fields?.sessionPresent }));

/**
 * On aedes (the embedded broker, MQTT 3.1.1 only: the gateway's MQTT 5 CONNECT is refused
 * and it falls back) and on Mosquitto (MQTT 5, a session that never expires): the same
 * promises across restarts, results queued in the persistent session included.
 */
describe.each([
  { broker: 'aedes', protocol: '3.1.1' },
  { broker: 'mosquitto', protocol: '5' },
] as const satisfies readonly { broker: BrokerKind; protocol: string }[])('outbox across restarts on $broker (MQTT $protocol)', ({ broker, protocol }) => {
  let servers: Servers;
  let responder: Responder;

  beforeAll(async () => {
    ({ servers, responder } = await startServersWithResponder(broker));
  });

  // Closes the responder, then the broker and store.
  afterAll(async () => servers?.close());

  it('republishes an uploaded run after a restart and completes it without uploading again', async () => {
    const device = 'restart-1';
    responder.silent.add(device);
    const first = new Gateway(gatewayOptions(servers, device), { logger: memoryLogger() });
    await first.start();
    const sending = first.send({ bytes: smallRun(101), name: 'run.dcm' }).catch((err: unknown) => err);
    await responder.until(() => responder.requestsOf(device).length === 1);
    await first.close();
    expect(await sending).toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    const [{ request } = { request: undefined }] = responder.requestsOf(device);

    responder.silent.delete(device);
    await using second = new Gateway(gatewayOptions(servers, device), { logger: memoryLogger() });
    const states: string[] = [];
    second.on('entry', (e) => states.push(e.state));
    const resumed = next(second, 'result');
    await second.start();
    const { result, sourcePath } = await resumed;

    expect(result.requestId).toBe(request?.id);
    expect(result.status).toBe('ok');
    expect(responder.requestsOf(device).map((s) => s.request.id)).toEqual([request?.id, request?.id]);
    expect(states).toEqual(['done']);
    expect(second.stats()).toMatchObject({ pending: 0, done: 1, sent: 0 });
    expect(sourcePath.startsWith(`${second.config.outboxPath}.spool`)).toBe(true);
    expect(await readdir(`${second.config.outboxPath}.spool`)).toEqual([]);
  });

  it('uploads a run again after a restart when its first upload never completed', async () => {
    const device = 'restart-2';
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const base = gatewayOptions(servers, device);
    const first = new Gateway({ ...base, s3: { ...base.s3, endpoint: unreachable } }, { logger: memoryLogger() });
    await first.start();
    const failed = next(first, 'error');
    const sending = first.send({ bytes: smallRun(102), name: 'run.dcm' }).catch((err: unknown) => err);
    const { error } = await failed;
    expect(error).toBeInstanceOf(ArteriaError);
    expect(error).toMatchObject({ code: 'UPLOAD_FAILED', retryable: true });
    await first.close();
    expect(await sending).toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    expect(responder.requestsOf(device)).toEqual([]);

    await using second = new Gateway(base, { logger: memoryLogger() });
    const resumed = next(second, 'result');
    await second.start();
    const { result } = await resumed;

    const [seen] = responder.requestsOf(device);
    expect(result.requestId).toBe(seen?.request.id);
    expect(seen?.objectComplete).toBe(true);
    expect((await objectBytes(servers.s3, seen?.request.inputs[0]?.uri ?? '')).equals(smallRun(102))).toBe(true);
  });

  it('receives a result the platform published while the gateway was offline', async () => {
    const device = 'restart-3';
    responder.silent.add(device);
    const first = new Gateway(gatewayOptions(servers, device), { logger: memoryLogger() });
    await first.start();
    const sending = first.send({ bytes: smallRun(103), name: 'run.dcm' }).catch((err: unknown) => err);
    await responder.until(() => responder.requestsOf(device).length === 1);
    await first.close();
    expect(await sending).toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    const request = responder.requestsOf(device)[0]?.request;
    if (request === undefined) throw new Error('no request seen');
    // The broker holds the device's persistent session and queues the result for it.
    await responder.answer(request, { answeredWhileOffline: true });

    const logger = memoryLogger();
    await using second = new Gateway(gatewayOptions(servers, device), { logger });
    const resumed = next(second, 'result');
    await second.start();
    const { result } = await resumed;
    expect(result).toMatchObject({ requestId: request.id, output: { answeredWhileOffline: true } });
    expect(second.stats().pending).toBe(0);
    // The broker kept the session, and the result in it, across the gateway's absence.
    expect(connections(logger)[0]).toEqual({ protocol, sessionPresent: true });
  });

  it(`carries the run's trace context ${protocol === '5' ? 'in MQTT 5 user properties, not the payload' : 'in the payload (MQTT 3.1.1 has no user properties)'}`, async () => {
    const device = 'restart-4';
    const trace = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=abc' };
    const logger = memoryLogger();
    await using gateway = new Gateway(gatewayOptions(servers, device), { logger });
    await gateway.start();
    const result = await gateway.send({ bytes: smallRun(104), name: 'run.dcm' }, { trace });
    expect(result.status).toBe('ok');
    const [seen] = responder.requestsOf(device);
    if (protocol === '5') {
      expect(seen?.userProperties).toEqual(trace);
      expect(seen?.request.trace).toBeUndefined();
    } else {
      expect(seen?.userProperties).toBeUndefined();
      expect(seen?.request.trace).toEqual(trace);
    }
    expect(connections(logger)).toEqual([{ protocol, sessionPresent: false }]);
    // Which path this broker takes is told once, at the fallback.
    expect(logger.lines.some((l) => l.message.startsWith('the broker does not speak MQTT 5'))).toBe(protocol === '3.1.1');
  });

  it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
