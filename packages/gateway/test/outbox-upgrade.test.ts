import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway, Outbox, type GatewayResult } from '@arteria/gateway';
import { ArteriaError, type PartialResultV1 } from '@arteria/protocol';
import { gatewayOptions, memoryLogger, newOutboxEntry as entry, smallRun, startServersWithResponder } from './helpers.js';

/**
 * The outbox as the gateway wrote it before segmented runs existed (the version before
 * 05202a6: no `kind` column, no segment journal tables), frozen here by hand so that the test
 * does not follow today's schema.
 */
const PREVIOUS_SCHEMA = `
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
  source_path TEXT NOT NULL, spooled INTEGER NOT NULL, algorithm TEXT NOT NULL, instance_uid TEXT NOT NULL, object_key TEXT NOT NULL,
  priority TEXT NOT NULL, deadline REAL, acquired_at REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'uploaded', 'published', 'done', 'failed', 'cancelled')),
  uri TEXT, size INTEGER, sha256 TEXT, request_id TEXT, request_json TEXT, result_json TEXT, trace_json TEXT,
  attempts INTEGER NOT NULL DEFAULT 0, publishes INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_attempt_at REAL NOT NULL,
  first_published_at REAL, last_published_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX outbox_state ON outbox (state, seq);
CREATE INDEX outbox_request ON outbox (request_id);
CREATE INDEX outbox_source ON outbox (source_path);
CREATE TABLE uploads (entry_id TEXT PRIMARY KEY, object_key TEXT NOT NULL, upload_id TEXT NOT NULL,
  part_size INTEGER NOT NULL, source_size INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE upload_parts (entry_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
  PRIMARY KEY (entry_id, part_number));
`;

const OPTIONS = { maxEntries: 10, keepFinishedEntries: 1 };

const segmentedRun = (entryId: string): Parameters<Outbox['add']>[2] & object => ({
  entryId,
  requestId: `run-${entryId}`,
  headerPath: `/spool/${entryId}.header`,
  pixelOffset: 0,
  frameBytes: 1024,
  plannedFrames: undefined,
  framesPerSegment: 10,
  stableAfterMs: 10_000,
  endWhenStable: false,
  headerUri: `s3://runs/acme/dev1/${entryId}/header`,
  headerSize: 512,
  headerSha256: 'a'.repeat(64),
  openJson: '{}',
});

describe('an outbox from the gateway version before segmented runs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-outbox-upgrade-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('opens, keeps its runs and their multipart uploads, and takes segmented runs from then on', () => {
    const file = path.join(dir, 'outbox.sqlite');
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(PREVIOUS_SCHEMA);
    const insert = old.prepare(`INSERT INTO outbox (id, source_path, spooled, algorithm, instance_uid, object_key, priority, acquired_at, state,
      request_id, request_json, next_attempt_at, created_at, updated_at) VALUES (?, ?, 0, 'echo@^1', '1.2.3', ?, 'clinical', 1, ?, ?, ?, 1, 1, 1)`);
    insert.run('uploading', '/runs/uploading.dcm', 'acme/dev1/uploading', 'pending', null, null);
    insert.run('waiting', '/runs/waiting.dcm', 'acme/dev1/waiting', 'published', 'req-waiting', '{"v":1}');
    old.prepare("INSERT INTO uploads VALUES ('uploading', 'acme/dev1/uploading', 'upload-1', 8388608, 20000000, 1)").run();
    old.prepare("INSERT INTO upload_parts VALUES ('uploading', 1, 8388608, '\"etag-1\"')").run();
    old.close(); // a gateway of that version stopped here

    const outbox = Outbox.open(file, OPTIONS);
    expect(outbox.get('uploading')).toMatchObject({ kind: 'file', state: 'pending' });
    expect(outbox.get('waiting')).toMatchObject({ kind: 'file', state: 'published', requestId: 'req-waiting' });
    expect(outbox.findByRequestId('req-waiting')?.id).toBe('waiting');
    expect(outbox.uploads.get('uploading')?.parts.get(1)).toEqual({ size: 8388608, etag: '"etag-1"' });
    expect(outbox.streaming()).toEqual([]);

    // The new tables work: a segmented run with its journal, a segment, a partial result.
    outbox.add(entry('streamed'), 2, segmentedRun('streamed'));
    outbox.segments.segmentCut('streamed', { index: 0, firstFrame: 0, frameCount: 10, uri: 's3://runs/acme/dev1/streamed/s0', size: 10_240, sha256: 'b'.repeat(64), acquired: 2 });
    outbox.segments.segmentUploaded('streamed', 0, 3);
    const partial: PartialResultV1 = {
      v: 1, kind: 'partial', requestId: 'run-streamed', tenant: 'acme', device: 'dev1', seq: 0, framesSeen: 10,
      event: { key: 'arrival', type: 'contrast-arrival', frame: 7 }, algorithm: { name: 'echo', version: '1.0.0', digest: `sha256:${'c'.repeat(64)}` }, at: 3,
    };
    expect(outbox.segments.keepPartial('streamed', partial)).toBe(true);
    expect(outbox.streaming().map((e) => e.id)).toEqual(['streamed']);
    expect(outbox.segments.segments('streamed')).toMatchObject([{ index: 0, uploadedAt: 3, announcedAt: undefined, announcements: 0 }]);
    // Finishing runs prunes the old and the new rows alike.
    expect(outbox.fail('uploading', new ArteriaError('INPUT_NOT_FOUND', 'gone'), 4)).toBe(true);
    outbox.close();

    const reopened = Outbox.open(file, OPTIONS);
    expect(reopened.get('waiting')?.state).toBe('published');
    expect(reopened.segments.get('streamed')).toMatchObject({ entryId: 'streamed', endWhenStable: false, plannedFrames: undefined, headerUploadedAt: undefined });
    reopened.close();
  });

  /** An outbox holding one segmented run, whose segment rows an earlier version wrote: `earlier` drops a column and adds a row as it did. */
  const earlierOutbox = (name: string, run: string, earlier: (db: Database.Database) => void): string => {
    const file = path.join(dir, `${name}.sqlite`);
    const outbox = Outbox.open(file, OPTIONS);
    outbox.add(entry(run), 2, segmentedRun(run));
    outbox.close();
    const db = new Database(file);
    earlier(db);
    db.close();
    return file;
  };

  it('an outbox whose segments were recorded only once uploaded (the version before segments were recorded when cut) counts them uploaded', () => {
    const file = earlierOutbox('segments-uploaded', 'streamed', (db) => {
      db.exec('ALTER TABLE run_segments DROP COLUMN uploaded_at');
      db.prepare(`INSERT INTO run_segments (entry_id, idx, first_frame, frame_count, uri, size, sha256, acquired, announced_at, announcements)
        VALUES ('streamed', 0, 0, 10, 's3://runs/acme/dev1/streamed/s0', 10240, ?, 5, NULL, 0)`).run('b'.repeat(64));
    });

    const upgraded = Outbox.open(file, OPTIONS);
    expect(upgraded.segments.segments('streamed')).toMatchObject([{ index: 0, uploadedAt: 5, announcedAt: undefined }]);
    upgraded.close();
  });

  it('an outbox whose segments have no encoding column (the version before compressed segments) reads them as frames stored as they are', () => {
    const file = earlierOutbox('segments-unencoded', 'plain', (db) => {
      db.exec('ALTER TABLE run_segments DROP COLUMN encoding');
      db.prepare(`INSERT INTO run_segments (entry_id, idx, first_frame, frame_count, uri, size, sha256, acquired, uploaded_at)
        VALUES ('plain', 0, 0, 10, 's3://runs/acme/dev1/plain/s0', 10240, ?, 5, NULL)`).run('b'.repeat(64));
    });

    const upgraded = Outbox.open(file, OPTIONS);
    expect(upgraded.segments.segments('plain')).toMatchObject([{ index: 0, size: 10240, encoding: undefined, uploadedAt: undefined }]);
    upgraded.segments.segmentCut('plain', { index: 1, firstFrame: 10, frameCount: 10, uri: 's3://runs/acme/dev1/plain/s1', size: 7000, sha256: 'c'.repeat(64), encoding: 'br', acquired: 6 });
    expect(upgraded.segments.segments('plain').map((s) => s.encoding)).toEqual([undefined, 'br']);
    upgraded.close();
  });

  it('a gateway started on it uploads and publishes the run the previous version left pending, and gets its result', async () => {
    const { servers } = await startServersWithResponder();
    try {
      const options = gatewayOptions(servers, 'upgraded');
      await mkdir(path.dirname(options.outboxPath), { recursive: true });
      const source = path.join(servers.directory, 'upgraded', 'left.dcm');
      await writeFile(source, smallRun(41));
      const old = new Database(options.outboxPath);
      old.pragma('journal_mode = WAL');
      old.exec(PREVIOUS_SCHEMA);
      old.prepare(`INSERT INTO outbox (id, source_path, spooled, algorithm, instance_uid, object_key, priority, acquired_at, state, next_attempt_at, created_at, updated_at)
        VALUES ('left', ?, 0, 'contrast-injection@^1', '1.2.3.4', 'acme/upgraded/1.2.3.4/left', 'clinical', 1, 'pending', 1, 1, 1)`).run(source);
      old.close();

      const gateway = new Gateway(options, { logger: memoryLogger() });
      const result = new Promise<GatewayResult>((resolve) => gateway.on('result', (r) => r.entryId === 'left' && resolve(r.result)));
      await gateway.start();
      try {
        expect(await result).toMatchObject({ status: 'ok' });
        expect(gateway.stats()).toMatchObject({ done: 1, pending: 0 });
      } finally {
        await gateway.close();
      }
    } finally {
      await servers.close();
    }
  }, 60_000);
});
