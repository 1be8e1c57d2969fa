import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('arteria plan and arteria simulate', () => {
  it('plan prints workers per rule with cost ratios and writes an SVG plot', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-plan-'));
    try {
      const plot = path.join(dir, 'plan.svg');
      const { stdout } = await run(process.execPath, [CLI, 'plan', '--devices', '1000', '--service-s', '2', '--plot', plot]);
      expect(stdout).toMatch(/1,000 devices/);
      for (const rule of ['1:1', 'linear backlog rule', 'static peak', 'arteria']) expect(stdout).toContain(rule);
      const svg = await readFile(plot, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('arteria (mean)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('simulate runs the five policies side by side and reports the targets', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'simulate', '--devices', '200', '--days', '0.25', '--json']);
    const [scenario] = JSON.parse(stdout) as { devices: number; results: { policy: string; drops: number; workerHours: number }[] }[];
    expect(scenario?.devices).toBe(200);
    expect(scenario?.results.map((r) => r.policy)).toEqual(['1:1', 'static peak', 'backlog rule', 'arteria', 'oracle']);
    for (const r of scenario?.results ?? []) expect(r.drops).toBe(0);
    const text = (await run(process.execPath, [CLI, 'simulate', '--devices', '200', '--days', '0.25', '--policies', 'arteria,oracle'])).stdout;
    expect(text).toMatch(/arteria P\(wait>2s\)/);
  });

  it('rejects an unknown policy with CONFIG_INVALID', async () => {
    await expect(run(process.execPath, [CLI, 'simulate', '--policies', 'magic'])).rejects.toMatchObject({ stderr: expect.stringContaining('CONFIG_INVALID') as unknown });
  });
});
