import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const OPENER = fileURLToPath(new URL('./fixtures/open-at-once.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'arteria-sqlite-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface OpenReport {
  opened: number;
  failures: string[];
}

function opener(startAt: number, files: number, slotMs: number): Promise<OpenReport> {
  const child = fork(OPENER, [dir, String(startAt), String(files), String(slotMs)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (report) => resolve(report as OpenReport));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`opener exited ${code} without a report`)));
  });
}

describe('opening one new SQLite file from several processes at once', () => {
  // Roles of one deployment start together on one new file (`arteria up`, a cluster's
  // autoscaler and dashboard). Switching a new file to WAL takes an exclusive lock, and
  // SQLite answers "database is locked" at once, without its busy wait, when the switch
  // meets another process's write: without a retry, several of the 480 opens below failed.
  it('every process opens every file: none gets "database is locked"', async () => {
    const processes = 6;
    const files = 80;
    const startAt = Date.now() + 1_500; // after every process has loaded
    const reports = await Promise.all(Array.from({ length: processes }, () => opener(startAt, files, 40)));
    expect(reports.flatMap((report) => report.failures)).toEqual([]);
    expect(reports.map((report) => report.opened)).toEqual(Array.from({ length: processes }, () => files));
  }, 60_000);
});
