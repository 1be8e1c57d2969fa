import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KServeV2Backend } from '@arteria/inference';
import { CLI, freePort, waitForPort } from './support/cluster.js';

const exec = promisify(execFile);
const BALLOON = fileURLToPath(new URL('../../../algorithms/balloon-inflation', import.meta.url));

describe('arteria serve-models', () => {
  it('exports the shipped model to a Triton repository, serves it over KServe v2, and stops on SIGINT', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-serve-models-'));
    try {
      const repository = path.join(dir, 'models');
      const { stdout } = await exec(process.execPath, [CLI, 'serve-models', 'export', BALLOON, '--repository', repository]);
      const manifest = JSON.parse(await readFile(path.join(BALLOON, 'manifest.json'), 'utf8')) as { model: { name: string; sha256: string } };
      expect(stdout).toContain(`sha256:${manifest.model.sha256}`);
      expect(await readFile(path.join(repository, manifest.model.name, 'config.pbtxt'), 'utf8')).toContain('platform: "onnxruntime_onnx"');

      const port = await freePort();
      const child = spawn(process.execPath, [CLI, 'serve-models', '--repository', repository, '--port', String(port), '--intra-op-threads', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await waitForPort(port, 30_000);
        const client = new KServeV2Backend({ url: `http://127.0.0.1:${port}`, requireDigest: true });
        expect(await client.serverReady()).toBe(true);
        const description = await client.load({ name: manifest.model.name, digest: `sha256:${manifest.model.sha256}` });
        expect(description.inputs.length).toBeGreaterThan(0);
      } finally {
        const exited = once(child, 'exit');
        child.kill('SIGINT');
        const [code] = (await exited) as [number | null];
        expect(code).toBe(0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
