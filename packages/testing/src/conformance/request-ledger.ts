import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ArteriaError, resultDigest, type RequestV1, type ResultV1 } from '@arteria/protocol';
import type { RequestLedger } from '@arteria/ports';
import { acceptedOf, testRequest, testResult } from '../requests.js';

/** Opens another handle on the one store under test (as another process would). */
export type LedgerOpener = () => Promise<RequestLedger>;

const makeRequest = (instanceUid: string): RequestV1 => testRequest(instanceUid);
const accepted = acceptedOf;
const makeResult = (request: RequestV1, status: ResultV1['status']): ResultV1 => testResult(request, status);

/**
 * The contract every `RequestLedger` keeps, seen from two handles on one store (two
 * processes): a request is recorded once, the first result stands, a result may come
 * before its acceptance, the first publish note stands, the newest replay note stands, counts follow, entries outlive
 * the handle, and a closed handle fails with a typed error.
 */
export function requestLedgerConformance(name: string, open: LedgerOpener): void {
  describe(`RequestLedger conformance: ${name}`, () => {
    const handles: RequestLedger[] = [];
    const handle = async (): Promise<RequestLedger> => {
      const ledger = await open();
      handles.push(ledger);
      return ledger;
    };
    // Each test names its own requests, so suites can share a store.
    const fresh = (): RequestV1 => makeRequest(`2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`)}`);
    afterAll(async () => {
      for (const ledger of handles) await ledger.close();
    });

    it('records an acceptance once across handles; a resend is "existing" and changes nothing', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      expect(await a.get(request.id)).toBeUndefined();
      expect(await a.recordAccepted(accepted(request))).toBe('new');
      expect(await b.recordAccepted(accepted(request, 9_999))).toBe('existing');
      expect(await b.get(request.id)).toEqual({ ...accepted(request), state: 'accepted' });
    });

    it('completes a request with its result; the first result stands', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      await a.recordAccepted(accepted(request));
      const first = makeResult(request, 'ok');
      await b.recordResult(first);
      await a.recordResult(makeResult(request, 'failed')); // a redelivered run
      const entry = await a.get(request.id);
      expect(entry).toMatchObject({ state: 'completed', status: 'ok', request, acceptedAt: 2_000 });
      expect(entry?.result).toEqual({ ...first, recordHash: resultDigest(first) });
    });

    it('returns the result that stands: its own when it recorded it, else the first one with its publish note', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      await a.recordAccepted(accepted(request));
      const first = makeResult(request, 'ok');
      const mine = await b.recordResult(first);
      expect(mine).toMatchObject({ recorded: true, result: { ...first, recordHash: resultDigest(first) } });
      expect(mine.publishedAt).toBeUndefined();
      // What the caller publishes is what a lookup serves.
      expect(mine.result).toEqual((await a.get(request.id))?.result);
      await b.markPublished(request.id, 3_000);
      const late = await a.recordResult(makeResult(request, 'failed')); // a redelivered run
      expect(late).toEqual({ recorded: false, result: { ...first, recordHash: resultDigest(first) }, completedAt: mine.completedAt, publishedAt: 3_000 });
    });

    it('keeps a result recorded before its acceptance, then adds the request', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      const result = makeResult(request, 'rejected');
      await a.recordResult(result);
      const early = await b.get(request.id);
      expect(early).toMatchObject({ state: 'completed', status: 'rejected', requestId: request.id, tenant: 'h1' });
      expect(early?.request).toBeUndefined();
      expect(await b.recordAccepted(accepted(request))).toBe('new');
      expect(await a.recordAccepted(accepted(request))).toBe('existing');
      expect(await a.get(request.id)).toMatchObject({ state: 'completed', request, result: { ...result, recordHash: resultDigest(result) } });
    });

    it('notes once, for every handle, that a result was published', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      await a.recordResult(makeResult(request, 'ok'));
      expect((await b.get(request.id))?.publishedAt).toBeUndefined();
      await a.markPublished(request.id, 1_000);
      await b.markPublished(request.id, 2_000);
      expect(await b.get(request.id)).toMatchObject({ state: 'completed', publishedAt: 1_000 });
    });

    it('notes, for every handle, the newest replay of a request', async () => {
      const [a, b] = [await handle(), await handle()];
      const request = fresh();
      await a.recordAccepted(accepted(request));
      await a.noteReplay(request.id, `${request.id}/replay/1`);
      await b.noteReplay(request.id, `${request.id}/replay/2`);
      await a.recordResult(makeResult(request, 'ok'));
      expect(await a.get(request.id)).toMatchObject({ state: 'completed', replayedAs: `${request.id}/replay/2` });
    });

    it('counts follow what was recorded, and recent entries include the newest', async () => {
      const a = await handle();
      const before = await a.counts();
      const requests = [fresh(), fresh(), fresh(), fresh()];
      for (const [i, r] of requests.entries()) await a.recordAccepted(accepted(r, Date.now() + i));
      await a.recordResult(makeResult(requests[0]!, 'ok'));
      await a.recordResult(makeResult(requests[1]!, 'rejected'));
      await a.recordResult(makeResult(requests[2]!, 'failed'));
      const after = await a.counts();
      expect({ accepted: after.accepted - before.accepted, completed: after.completed - before.completed, ok: after.ok - before.ok, rejected: after.rejected - before.rejected, failed: after.failed - before.failed }).toEqual({ accepted: 4, completed: 3, ok: 1, rejected: 1, failed: 1 });
      const recent = (await a.recent(50)).map((e) => e.requestId);
      for (const r of requests) expect(recent).toContain(r.id);
      expect(await a.recent(0)).toEqual([]);
    });

    it('entries outlive the handle that wrote them', async () => {
      const a = await open();
      const request = fresh();
      await a.recordAccepted(accepted(request));
      await a.recordResult(makeResult(request, 'ok'));
      await a.close();
      await a.close(); // idempotent
      const reopened = await handle();
      expect(await reopened.get(request.id)).toMatchObject({ state: 'completed', request });
    });

    it('close is memoised, and a closed handle fails with ILLEGAL_STATE', async () => {
      const a = await open();
      const closing = a.close();
      expect(a.close()).toBe(closing);
      await closing;
      const error = await a.counts().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ArteriaError);
      expect(error).toMatchObject({ code: 'ILLEGAL_STATE' });
    });
  });
}
