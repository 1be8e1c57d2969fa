import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { synthesizeXaRun } from '@arteria/dicom';
import { deviceToken } from '@arteria/protocol';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SECRET = 'devices-e2e-tenant-secret-0123456789';
const PLATFORM_SECRET = 'devices-e2e-platform-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('arteria devices', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let gateway: Gateway;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-devices-'));
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, platformSecret: PLATFORM_SECRET, algorithmDirs: [algorithmDir] });
    gateway = new Gateway(
      {
        tenant: 'acme',
        device: 'cathlab-7',
        token: deviceToken(SECRET, { tenant: 'acme', device: 'cathlab-7' }),
        mqttUrl: platform.mqttUrl,
        s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket },
        outboxPath: path.join(dir, 'gateway', 'outbox.sqlite'),
      },
      { logger: quiet },
    );
    await gateway.start();
  });
  afterAll(async () => {
    await gateway.close();
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]): Promise<{ stdout: string; code: number }> =>
    exec(process.execPath, [CLI, 'devices', ...args, '--mqtt-url', platform.mqttUrl, '--platform-secret', PLATFORM_SECRET]).then(
      ({ stdout }) => ({ stdout, code: 0 }),
      (err: { stdout: string; code: number }) => ({ stdout: err.stdout, code: err.code }),
    );

  it('lists the device, pushes a config that is applied, and one that is refused (the previous stays active)', { timeout: 120_000 }, async () => {
    const good = path.join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ algorithms: ['contrast-injection@^1'], routes: [{ maxFrames: 1, algorithms: [] }], uploadBandwidthBytesPerSecond: 20_000_000 }));
    const applied = await cli('configure', 'acme/cathlab-7', '--file', good);
    expect(applied).toEqual({ code: 0, stdout: 'acme/cathlab-7: config v1 applied\n' });
    expect(gateway.activeConfig?.version).toBe(1);

    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ algorithms: ['contrast-injection@^1'], routes: [{ protocolName: 'Coro', algorithms: ['stenosis@^1'] }] }));
    const refused = await cli('configure', 'acme/cathlab-7', '--file', bad);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/config v2 NOT applied .*stenosis@\^1.*active: v1/);
    expect(gateway.activeConfig?.version).toBe(1);

    const shown = await cli('show', 'acme/cathlab-7');
    expect(JSON.parse(shown.stdout)).toMatchObject({ desired: { version: 2 }, reported: { version: 2, applied: false, activeVersion: 1 }, status: { state: 'online', gatewayVersion: '0.1.0' } });
    expect((await cli('list')).stdout).toMatch(/acme\/cathlab-7\s+online\s+\S+\s+0\.1\.0\s+v2\s+v1\s+v2 refused/);
  });

  // Four CLI processes in one test: the bound is generous for a loaded machine, not a speed claim.
  it('rolls back a route to an algorithm the platform does not have (its ingest answers the admission probe), numbers versions without reuse, and runs keep working', { timeout: 120_000 }, async () => {
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, JSON.stringify({ algorithms: ['contrast-injection@^1', 'does-not-exist@^1'], routes: [{ protocolName: 'Coro', algorithms: ['does-not-exist@^1'] }] }));
    const refused = await cli('configure', 'acme/cathlab-7', '--file', broken);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/config v3 NOT applied \(UNKNOWN_ALGORITHM: rolled back: the platform would refuse runs sent to does-not-exist@\^1.*\); active: v1/);
    expect(gateway.activeConfig?.version).toBe(1);

    // The next push gets a new number; a file that names a version already given is refused before anything is sent.
    const good = path.join(dir, 'good-again.json');
    await writeFile(good, JSON.stringify({ algorithms: ['contrast-injection@^1'] }));
    expect(await cli('configure', 'acme/cathlab-7', '--file', good)).toEqual({ code: 0, stdout: 'acme/cathlab-7: config v4 applied\n' });
    const reused = path.join(dir, 'reused.json');
    await writeFile(reused, JSON.stringify({ version: 4, algorithms: ['contrast-injection@^1'], uploadBandwidthBytesPerSecond: 1_000 }));
    const stale = await exec(process.execPath, [CLI, 'devices', 'configure', 'acme/cathlab-7', '--file', reused, '--mqtt-url', platform.mqttUrl, '--platform-secret', PLATFORM_SECRET]).catch((err: { stderr: string; code: number }) => err);
    expect(stale.stderr).toMatch(/CONFIG_STALE.*version 4/);
    expect(gateway.activeConfig?.version).toBe(4);

    // A run sent now is computed by the real platform.
    const result = await gateway.send({ bytes: synthesizeXaRun({ seed: 77, rows: 64, columns: 64, frames: 8, bitsStored: 8 }).bytes, name: 'run.dcm' });
    expect(result).toMatchObject({ status: 'ok', algorithm: { name: 'contrast-injection' } });
  });
});
