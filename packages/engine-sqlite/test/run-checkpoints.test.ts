import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { runCheckpointStoreConformance } from '@arteria/testing';

const dir = mkdtempSync(join(tmpdir(), 'arteria-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Handles on one file, as worker processes on one machine share it.
runCheckpointStoreConformance('SQLite file', () => Promise.resolve(new SqliteRunCheckpoints({ path: join(dir, 'checkpoints.db') })));
