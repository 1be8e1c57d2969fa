import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { IllegalTransitionError, NEXT_STATES, Outbox, type EntryState, type OutboxResult, type OutboxTransition } from '@arteria/gateway';
import { freePort, gatewayOptions, newOutboxEntry as newEntry, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/gateway-child.mjs', import.meta.url));
const PATH: EntryState[] = ['pending', 'uploaded', 'published', 'done'];
const OPTIONS = { maxEntries: 10, keepFinishedEntries: 10 };


const resultFor = (requestId: string): OutboxResult => ({ v: 1, requestId, tenant: 'acme', device: 'dev1', status: 'ok', output: {}, timings: { received: 5_000 } });

describe('the outbox state machine', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arteria-outbox-states-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('delivers each transition in order, committed before delivery, and each survives a reopen', () => {
    const file = join(dir, 'path.db');
    const seen: Pick<OutboxTransition, 'from' | 'to'>[] = [];
    /** A fresh outbox on the same file for every step: each step starts from what the last one committed. */
    const step = <T>(act: (outbox: Outbox) => T): T => {
      const outbox = Outbox.open(file, OPTIONS);
      outbox.subscribe((t) => {
        // Committed before delivery: another connection to the file already sees the new state.
        const reader = Outbox.open(file, OPTIONS);
        expect(reader.get(t.entry.id)?.state).toBe(t.to);
        reader.close();
        seen.push({ from: t.from, to: t.to });
      });
      try {
        return act(outbox);
      } finally {
        outbox.close();
      }
    };
    step((o) => o.add(newEntry('e1'), 1_000));
    expect(step((o) => o.get('e1')?.state)).toBe('pending');
    step((o) => o.markUploaded('e1', { uri: 's3://b/k', size: 1, sha256: 'ab', requestId: 'r1', requestJson: '{}' }, 2_000));
    step((o) => o.markPublished('e1', 3_000));
    // A resend is recorded, but is no transition.
    expect(step((o) => o.markPublished('e1', 4_000))).toMatchObject({ state: 'published', publishes: 2, firstPublishedAt: 3_000, lastPublishedAt: 4_000 });
    expect(step((o) => o.complete(resultFor('r1'), 5_000))).toMatchObject([{ id: 'e1', state: 'done' }]);
    expect(seen).toEqual([
      { from: undefined, to: 'pending' },
      { from: 'pending', to: 'uploaded' },
      { from: 'uploaded', to: 'published' },
      { from: 'published', to: 'done' },
    ]);
    expect(step((o) => o.get('e1'))).toMatchObject({ state: 'done', requestId: 'r1', publishes: 2 });
  });

  it('refuses an illegal transition with a typed error and changes nothing', () => {
    const outbox = Outbox.open(join(dir, 'illegal.db'), OPTIONS);
    const seen: string[] = [];
    outbox.subscribe((t) => seen.push(`${t.from ?? '-'}>${t.to}`));
    try {
      outbox.add(newEntry('p'), 1);
      // A pending entry has no request to publish.
      const publishPending = catching(() => outbox.markPublished('p', 2));
      expect(publishPending).toBeInstanceOf(IllegalTransitionError);
      expect(publishPending).toBeInstanceOf(ArteriaError);
      expect(publishPending).toMatchObject({ code: 'ILLEGAL_STATE', retryable: false, entryId: 'p', from: 'pending', to: 'published' });

      const fields = { uri: 's3://b/k', size: 1, sha256: 'ab', requestId: 'r2', requestJson: '{}' };
      outbox.markUploaded('p', fields, 3);
      // Uploaded twice: the second upload is a bug, not a race.
      expect(catching(() => outbox.markUploaded('p', fields, 4))).toMatchObject({ code: 'ILLEGAL_STATE', from: 'uploaded', to: 'uploaded' });
      outbox.complete(resultFor('r2'), 5);
      // A finished entry is final.
      expect(catching(() => outbox.markUploaded('p', fields, 6))).toMatchObject({ code: 'ILLEGAL_STATE', from: 'done', to: 'uploaded' });
      expect(catching(() => outbox.markUploaded('nobody', fields, 6))).toMatchObject({ code: 'ILLEGAL_STATE', from: undefined, to: 'uploaded' });
      // Races the gateway expects are no errors, and change nothing either: a result that
      // overtook its PUBACK, a withdrawal crossing the result.
      expect(outbox.markPublished('p', 7)).toBeUndefined();
      expect(outbox.cancel('p', new Error('gave up'), 8)).toBe(false);
      expect(outbox.fail('p', new ArteriaError('INPUT_NOT_FOUND', 'gone'), 8)).toBe(false);

      expect(outbox.get('p')).toMatchObject({ state: 'done', publishes: 0, updatedAt: 5 });
      expect(seen).toEqual(['->pending', 'pending>uploaded', 'uploaded>done']);
      for (const final of ['done', 'failed', 'cancelled'] as const) expect(NEXT_STATES[final]).toEqual([]);
    } finally {
      outbox.close();
    }
  });
});

describe('a gateway killed mid-flow resumes from the state its outbox committed', () => {
  let servers: Servers;
  let responder: Responder;
  beforeAll(async () => {
    ({ servers, responder } = await startServersWithResponder());
  });
  afterAll(async () => servers?.close());

  // Each case holds the run in one state (no store, no broker, no answer), SIGKILLs the
  // gateway there, then starts a fresh one on the same outbox.
  it.each([
    { state: 'pending', hold: 'an unreachable object store' },
    { state: 'uploaded', hold: 'an unreachable broker' },
    { state: 'published', hold: 'a platform that does not answer' },
  ] as const)('killed in $state ($hold): the restarted gateway goes on from there', async ({ state }) => {
    const device = `states-${state}`;
    const options = gatewayOptions(servers, device);
    const closed = `127.0.0.1:${await freePort()}`;
    const held =
      state === 'pending' ? { ...options, s3: { ...options.s3, endpoint: `http://${closed}` } } : state === 'uploaded' ? { ...options, mqttUrl: `mqtt://${closed}` } : options;
    if (state === 'published') responder.silent.add(device);
    const runFile = join(servers.directory, `${device}.dcm`);
    await writeFile(runFile, smallRun(PATH.indexOf(state) + 300));

    const before = await runChild(held, runFile, state);
    expect(before.states).toEqual(PATH.slice(0, PATH.indexOf(state) + 1));
    expect(before.exit).toBe('SIGKILL');

    const outbox = Outbox.open(options.outboxPath, OPTIONS);
    const persisted = outbox.get(before.entryId ?? '');
    const live = outbox.liveCount();
    outbox.close();
    expect(persisted?.state).toBe(state);
    expect(live).toBe(1);

    responder.silent.delete(device);
    const after = await runChild(options, undefined, undefined);
    expect(after.states).toEqual(PATH.slice(PATH.indexOf(state) + 1));
    expect(after.entryId).toBe(before.entryId);
    expect(after.exit).toBe(0);
    const requests = responder.requestsOf(device);
    expect(new Set(requests.map((r) => r.request.id)).size).toBe(1);
    expect(requests.every((r) => r.objectComplete)).toBe(true);
  });
});

function catching(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected it to throw');
}

/** Runs the gateway child; with `killIn`, SIGKILLs it once its entry reports that state. */
async function runChild(options: unknown, runFile: string | undefined, killIn: EntryState | undefined): Promise<{ states: string[]; entryId: string | undefined; exit: string | number | null }> {
  const args = [CHILD, JSON.stringify(options), ...(runFile === undefined ? [] : [runFile])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  const states: string[] = [];
  let entryId: string | undefined;
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as { type: string; state?: string; entryId?: string };
    if (line.type !== 'entry' || line.state === undefined) return;
    states.push(line.state);
    entryId = line.entryId;
    if (line.state === killIn) child.kill('SIGKILL');
  });
  const exit = await new Promise<string | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { states, entryId, exit };
}
