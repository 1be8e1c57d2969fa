import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '@arteria/gateway-site';
import { echo, freePort, startServers, type Servers } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const exec = promisify(execFile);
const BIN = fileURLToPath(import.meta.resolve('@arteria/gateway-site').replace(/index\.js$/, 'bin.js'));

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

async function configFile(name: string, overrides: Parameters<typeof gatewayOptions>[2], dicomPort: number, more: object = {}): Promise<string> {
  const path = join(servers.directory, `${name}.json`);
  await writeFile(path, JSON.stringify({ gateway: gatewayOptions(servers, name, { ...overrides, deidentification: { enabled: true } }), dicom: { aeTitle: 'ARTERIA', port: dicomPort, host: '127.0.0.1', stableMs: 500 }, ...more }));
  return path;
}

describe('arteria-gateway', () => {
  it('doctor checks broker, object store, certificates, clock, disk, key, DICOM port and folders', async () => {
    const config = await configFile('doctor-1', {}, await freePort());
    const { stdout } = await exec(process.execPath, [BIN, 'doctor', '--config', config, '--min-free-gb', '0', '--json']);
    const checks = JSON.parse(stdout) as CheckResult[];
    const state = Object.fromEntries(checks.map((c) => [c.check, c.state]));
    expect(state).toEqual({ config: 'ok', broker: 'ok', 'object store': 'ok', certificates: 'warn', clock: 'ok', disk: 'ok', 'de-identification key': 'ok', 'dicom port': 'ok', folders: 'ok' });
    expect(checks.find((c) => c.check === 'folders')?.detail).toMatch(/DICOM receive folder .*\.incoming \(created on the first start\)/);

    // A watched folder that is a file (a typo in the configuration) fails the folders check.
    const file = join(servers.directory, 'not-a-folder');
    await writeFile(file, 'a file');
    const typo = await configFile('doctor-4', {}, await freePort(), { watchFolder: { folder: file }, results: { folder: join(servers.directory, 'results-4') } });
    const wrong = await exec(process.execPath, [BIN, 'doctor', '--config', typo, '--min-free-gb', '0']).catch((err: { code: number; stdout: string }) => err);
    expect(wrong).toMatchObject({ code: 1 });
    expect((wrong as { stdout: string }).stdout).toMatch(/^FAIL\s+folders\s+watched folder .*not-a-folder: .*not-a-folder is not a folder/m);

    // No broker where the config says: the broker check fails and so does the command.
    const bad = await configFile('doctor-2', { mqttUrl: `mqtt://127.0.0.1:${await freePort()}` }, await freePort());
    const failed = await exec(process.execPath, [BIN, 'doctor', '--config', bad, '--min-free-gb', '0']).catch((err: { code: number; stdout: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stdout: string }).stdout).toMatch(/^FAIL\s+broker/m);

    // A DICOM port held by another program fails the check.
    const squatter = createServer((socket) => socket.resume()); // accepts, never speaks DICOM
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = await configFile('doctor-3', {}, (squatter.address() as AddressInfo).port);
    const held = await exec(process.execPath, [BIN, 'doctor', '--config', taken, '--min-free-gb', '0', '--timeout-s', '1']).catch((err: { code: number; stdout: string }) => err);
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    expect((held as { stdout: string }).stdout).toMatch(/^FAIL\s+dicom port\s+.*taken by another program/m);
  });

  it('run serves C-ECHO on the configured AE title and stops on SIGTERM', async () => {
    const port = await freePort();
    const config = await configFile('run-1', {}, port);
    const child = spawn(process.execPath, [BIN, 'run', '--config', config], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let answered = false;
    for (let i = 0; i < 100 && !answered; i += 1) {
      answered = await echo(port, 'ARTERIA');
      if (!answered) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answered).toBe(true);
    // doctor next to the running service: the DICOM port is taken, by this gateway.
    const { stdout } = await exec(process.execPath, [BIN, 'doctor', '--config', config, '--min-free-gb', '0', '--json']);
    expect((JSON.parse(stdout) as CheckResult[]).find((c) => c.check === 'dicom port')).toMatchObject({ state: 'ok', detail: expect.stringMatching(/answers C-ECHO as ARTERIA/) as string });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
