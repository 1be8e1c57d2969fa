import { describe, expect, it } from 'vitest';
import { ArteriaError, type GrantAnswerV1 } from '@arteria/protocol';
import { GrantedUrls, createS3Client, s3PartStore, uploadToStore } from '@arteria/gateway';

type Question = Parameters<ConstructorParameters<typeof GrantedUrls>[0]>[0];

const NOW = 1_000_000;
const KEY = 'acme/dev/1.2.3/e.dcm';

/** A platform that grants whatever it is asked for (or refuses with `refuse`), recording each question. */
function platform(refuse?: (q: Question) => ArteriaError | undefined): { questions: Question[]; ask: (q: Question) => Promise<GrantAnswerV1> } {
  const questions: Question[] = [];
  return {
    questions,
    ask: async (asked) => {
      let q = asked;
      questions.push(asked);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const refusal = refuse?.(q);
      if (refusal !== undefined) throw refusal;
      // As the platform does: `create` with part URLs starts the upload there.
      const starts = q.uploadId === undefined && (q.operations ?? []).includes('create') && (q.parts?.length ?? 0) > 0;
      if (starts) q = { ...q, uploadId: 'started-1', operations: (q.operations ?? []).filter((op) => op !== 'create') };
      const url = (what: string): string => `http://store/${q.key}?${what}&uploadId=${q.uploadId ?? ''}`;
      return {
        v: 1,
        kind: 'grant-answer',
        grantId: 'g',
        tenant: 'acme',
        device: 'dev',
        key: q.key,
        expiresAt: NOW + 300_000,
        ...(starts ? { uploadId: 'started-1' } : {}),
        urls: Object.fromEntries((q.operations ?? []).map((op) => [op, url(op)])),
        parts: (q.parts ?? []).map((partNumber) => ({ partNumber, url: url(`partNumber=${partNumber}`) })),
      };
    },
  };
}

describe('GrantedUrls', () => {
  it('asks for put and head in one grant', async () => {
    const { questions, ask } = platform();
    const urls = new GrantedUrls(ask, () => NOW);
    expect(await urls.url({ op: 'put', key: KEY })).toContain('?put');
    expect(await urls.url({ op: 'head', key: KEY })).toContain('?head');
    expect(questions).toEqual([{ key: KEY, operations: ['put', 'head'] }]);
  });

  it('asks for a planned upload\'s part URLs a batch per grant, ahead of need, the first with complete and head', async () => {
    const { questions, ask } = platform();
    const urls = new GrantedUrls(ask, () => NOW);
    const parts = Array.from({ length: 150 }, (_, i) => i + 1);
    urls.plan(KEY, 'up1', parts);
    // Parts taken in order, four at a time, as an upload with four in flight takes them.
    for (let first = 1; first <= 150; first += 4) {
      const batch = parts.slice(first - 1, first + 3);
      const got = await Promise.all(batch.map((partNumber) => urls.url({ op: 'part', key: KEY, uploadId: 'up1', partNumber })));
      expect(got).toEqual(batch.map((p) => expect.stringContaining(`partNumber=${p}&`) as unknown));
    }
    await urls.url({ op: 'complete', key: KEY, uploadId: 'up1' });
    await urls.url({ op: 'head', key: KEY });
    expect(questions.map((q) => [q.operations, q.parts?.[0], q.parts?.length])).toEqual([
      [['complete', 'head'], 1, 64],
      [[], 65, 64],
      [[], 129, 22],
    ]);
    expect(questions.every((q) => q.uploadId === 'up1')).toBe(true);
  });

  it('starts a multipart upload and gets its first part URLs, complete and head in one grant', async () => {
    const { questions, ask } = platform();
    const urls = new GrantedUrls(ask, () => NOW);
    const parts = Array.from({ length: 13 }, (_, i) => i + 1);
    expect(await urls.startUpload(KEY, parts)).toBe('started-1');
    for (const partNumber of parts) expect(await urls.url({ op: 'part', key: KEY, uploadId: 'started-1', partNumber })).toContain(`partNumber=${partNumber}&uploadId=started-1`);
    await urls.url({ op: 'complete', key: KEY, uploadId: 'started-1' });
    await urls.url({ op: 'head', key: KEY });
    expect(questions).toEqual([{ key: KEY, operations: ['create', 'complete', 'head'], parts }]);
  });

  it('leaves the upload to a create URL where the platform cannot start it (INVALID_REQUEST)', async () => {
    const { ask } = platform((q) => (q.uploadId === undefined && (q.parts?.length ?? 0) > 0 ? new ArteriaError('INVALID_REQUEST', 'parts need an uploadId') : undefined));
    const urls = new GrantedUrls(ask, () => NOW);
    expect(await urls.startUpload(KEY, [1, 2])).toBeUndefined();
    expect(await urls.url({ op: 'create', key: KEY })).toContain('?create');
  });

  it('rejects a start the platform refuses with its typed error', async () => {
    const { ask } = platform(() => new ArteriaError('OBJECT_EXISTS', 'already stored'));
    await expect(new GrantedUrls(ask, () => NOW).startUpload(KEY, [1, 2])).rejects.toMatchObject({ code: 'OBJECT_EXISTS' });
  });

  it('fails an upload whose grant is refused with the platform\'s code, before any byte is sent', async () => {
    const { ask } = platform(() => new ArteriaError('NOT_AUTHORIZED', 'not your key'));
    // Nothing listens there: a request that reached the store would fail with UPLOAD_FAILED instead.
    const s3 = createS3Client({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });
    try {
      const store = s3PartStore(s3, 'arteria-runs', { urls: new GrantedUrls(ask, () => NOW) });
      const target = { bucket: 'arteria-runs', key: KEY };
      await expect(uploadToStore(store, { ...target, source: Buffer.alloc(1000) })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' });
      await expect(uploadToStore(store, { ...target, source: Buffer.alloc(11 * 1024 * 1024) }, { partSizeBytes: 5 * 1024 * 1024 })).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' });
    } finally {
      s3.destroy();
    }
  });

  it('rejects every URL of a refused batch with the platform\'s typed error, and asks again afterwards', async () => {
    let refusing = true;
    const { questions, ask } = platform(() => (refusing ? new ArteriaError('NOT_AUTHORIZED', 'not your key') : undefined));
    const urls = new GrantedUrls(ask, () => NOW);
    urls.plan(KEY, 'up2', [1, 2, 3]);
    const refused = await Promise.allSettled([1, 2, 3].map((partNumber) => urls.url({ op: 'part', key: KEY, uploadId: 'up2', partNumber })));
    for (const r of refused) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'NOT_AUTHORIZED' });
    }
    expect(questions).toHaveLength(1); // one batch, refused once for all its parts
    refusing = false;
    expect(await urls.url({ op: 'part', key: KEY, uploadId: 'up2', partNumber: 2 })).toContain('partNumber=2&');
  });

  it('fails with GRANT_UNAVAILABLE when a grant leaves out a URL it was asked for', async () => {
    const urls = new GrantedUrls(async (q) => ({ ...(await platform().ask(q)), parts: [] }), () => NOW);
    urls.plan(KEY, 'up3', [1, 2]);
    await expect(urls.url({ op: 'part', key: KEY, uploadId: 'up3', partNumber: 1 })).rejects.toMatchObject({ code: 'GRANT_UNAVAILABLE' });
  });

  it('asks again for URLs whose grant is about to expire', async () => {
    let now = NOW;
    const { questions, ask } = platform();
    const urls = new GrantedUrls(ask, () => now);
    await urls.url({ op: 'head', key: KEY });
    now = NOW + 290_000; // 10 s of the grant left: too little to start a send with
    await urls.url({ op: 'head', key: KEY });
    expect(questions).toHaveLength(2);
  });
});
