import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArteriaError, encodePayload, type AlgorithmRef } from '@arteria/protocol';
import { Ingest, type AlgorithmResolver } from '@arteria/ingest';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import type { InputSource } from '@arteria/ports';
import { testRequest } from '@arteria/testing';
import { Worker, type AlgorithmExecutor, type StreamSource } from '@arteria/worker';
import { KeptResults } from './support/kept-results.js';

/**
 * The worker reads an input whole when its executor says the run would go at once to a
 * thread that takes whole runs (no gathering copy there), and streams it otherwise; either
 * way the input's own checks decide before any output is published.
 */
const dir = mkdtempSync(join(tmpdir(), 'arteria-whole-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RELEASE: AlgorithmRef = { name: 'echo', version: '1.0.1', digest: `sha256:${'e'.repeat(64)}` };
const TOPIC = { tenant: 'acme', device: 'dev1', kind: 'requests' as const };
const releases: AlgorithmResolver = { resolve: () => ({ ref: RELEASE }) };
const BYTES = Buffer.from('0123456789');

interface Calls {
  fetched: number;
  streamed: number;
  /** The chunks each execute() was given, and the size it was told. */
  inputs: { chunks: Uint8Array[]; size: number }[];
}

/** One request through ingest and a worker; `fetch` decides what a whole read gives. */
async function runOnce(wantsWhole: boolean, fetch: InputSource['fetch'] = () => Promise.resolve(Buffer.from(BYTES))): Promise<{ calls: Calls; results: KeptResults }> {
  const n = Math.random().toString(36).slice(2);
  const queue = new SqliteWorkQueue({ path: join(dir, `queue-${n}.db`), maxDeliveries: 1 });
  const ledger = new SqliteRequestLedger({ path: join(dir, `ledger-${n}.db`) });
  const results = new KeptResults();
  const calls: Calls = { fetched: 0, streamed: 0, inputs: [] };
  const ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: releases });
  const request = testRequest(`1.2.7.${n.length}`, { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', size: BYTES.length });
  expect(await ingest.handle(TOPIC, encodePayload(request))).toMatchObject({ status: 'accepted' });
  const executor: AlgorithmExecutor = {
    wantsWholeInput: (ref) => {
      expect(ref).toEqual(RELEASE);
      return wantsWhole;
    },
    execute: async (_ref, input: StreamSource) => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of input.chunks) chunks.push(chunk);
      calls.inputs.push({ chunks, size: input.size });
      return { output: { ok: true } };
    },
  };
  const inputs: InputSource = {
    fetch: (...args) => {
      calls.fetched++;
      return fetch(...args);
    },
    stream: async function* () {
      calls.streamed++;
      yield await Promise.resolve(Buffer.from(BYTES));
    },
  };
  const worker = new Worker({ queue, ledger, results, inputs, executor }, { visibilityMs: 10_000, leaseWaitMs: 50, maxInputBytes: 1_000, maxDeliveries: 1 });
  worker.start();
  for (let i = 0; i < 200 && results.published.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  await worker.drain();
  await queue.close();
  await ledger.close();
  return { calls, results };
}

describe('worker: whole input for whole-run threads', () => {
  it('reads the input whole and hands the bytes over when the executor wants them whole', async () => {
    const { calls, results } = await runOnce(true);
    expect(calls).toMatchObject({ fetched: 1, streamed: 0 });
    // One chunk, the whole input: a whole-run thread takes it without copying.
    expect(calls.inputs).toHaveLength(1);
    expect(calls.inputs[0]?.size).toBe(BYTES.length);
    expect(calls.inputs[0]?.chunks).toHaveLength(1);
    expect(Buffer.from(calls.inputs[0]?.chunks[0] ?? []).equals(BYTES)).toBe(true);
    expect(results.published).toHaveLength(1);
    expect(results.published[0]).toMatchObject({ status: 'ok', output: { ok: true } });
    expect(results.published[0]?.timings.fetched).toBeTypeOf('number');
  });

  it('streams the input otherwise', async () => {
    const { calls, results } = await runOnce(false);
    expect(calls).toMatchObject({ fetched: 0, streamed: 1 });
    expect(calls.inputs[0]?.size).toBe(BYTES.length);
    expect(results.published[0]).toMatchObject({ status: 'ok' });
  });

  it('refuses an input that fails its checks read whole with the source\'s code, and runs nothing', async () => {
    const mismatch = new ArteriaError('CHECKSUM_MISMATCH', 'input has SHA-256 0000; the request declared cccc');
    const { calls, results } = await runOnce(true, () => Promise.reject(mismatch));
    expect(calls.fetched).toBe(1);
    expect(calls.inputs).toHaveLength(0);
    expect(results.published).toHaveLength(1);
    expect(results.published[0]).toMatchObject({ status: 'rejected', error: { code: 'CHECKSUM_MISMATCH' } });
    expect(results.published[0]?.output).toBeUndefined();
  });
});
