import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteWorkerRoster } from '@arteria/engine-sqlite';
import { workerRosterConformance } from '@arteria/testing';

const dir = mkdtempSync(join(tmpdir(), 'arteria-roster-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two connections on one file, as roles on one machine share the deployment's database.
workerRosterConformance('SQLite (two connections on one file)', () => Promise.resolve(new SqliteWorkerRoster({ path: join(dir, 'platform.db') })));
