import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ARTERIA_PROGRAM } from '@arteria/cli';
import { EXIT, commandPaths, runProgram, type Program } from '@arteria/command';
import { GATEWAY_PROGRAM } from '@arteria/gateway-site';

const exec = promisify(execFile);
const ARTERIA = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const GATEWAY = fileURLToPath(new URL('../../gateway-site/dist/bin.js', import.meta.url));
const ROOT = new URL('../../../', import.meta.url);

async function capture(program: Program, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const code = await runProgram(program, argv, { stdout: (t) => (out.stdout += t), stderr: (t) => (out.stderr += t) });
  return { code, ...out };
}

/** Runs a binary; resolves with its exit status instead of rejecting on a non-zero one. */
async function spawnBin(bin: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return exec(process.execPath, [bin, ...argv]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

const packageVersion = async (pkg: string): Promise<string> => (JSON.parse(await readFile(new URL(`packages/${pkg}/package.json`, ROOT), 'utf8')) as { version: string }).version;

describe.each([
  ['arteria', ARTERIA_PROGRAM],
  ['arteria-gateway', GATEWAY_PROGRAM],
])('%s: every command helps', (name, program) => {
  const paths = commandPaths(program);

  it('has the commands users were told about', () => {
    expect(paths.length).toBeGreaterThanOrEqual(name === 'arteria' ? 12 : 2);
  });

  it.each(paths.map((p) => [p.join(' ')]))('%s --help prints its help and exits 0', async (joined) => {
    const path = joined.split(' ');
    const r = await capture(program, [...path, '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(`${name} ${joined}`);
    // Same answer with the help word first and with -h.
    expect((await capture(program, ['help', ...path])).stdout).toBe(r.stdout);
    expect((await capture(program, [...path, '-h'])).stdout).toBe(r.stdout);
    expect(await capture(program, [...path, '--version'])).toEqual({ code: 0, stdout: `${name} ${program.version}\n`, stderr: '' });
  });

  it('the top-level help names every command', async () => {
    const r = await capture(program, ['--help']);
    expect(r.code).toBe(0);
    for (const c of program.commands) expect(r.stdout).toMatch(new RegExp(`^  ${name} ${c.name}\\s`, 'm'));
  });
});

describe('the binaries', () => {
  it('report their package versions', { timeout: 300_000 }, async () => {
    const [arteria, gateway] = await Promise.all([spawnBin(ARTERIA, ['--version']), spawnBin(GATEWAY, ['--version'])]);
    expect(arteria).toMatchObject({ code: 0, stdout: `arteria ${await packageVersion('cli')}\n` });
    expect(gateway).toMatchObject({ code: 0, stdout: `arteria-gateway ${await packageVersion('gateway')}\n` });
  });

  // A module-resolve hook names every file the process loads: what a command imports, not how long it took.
  it('load none of the platform for what needs none of it (--version, the command list, plan), and no Kubernetes client without a Kubernetes target', { timeout: 300_000 }, async () => {
    const hook = `data:text/javascript,export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write('loads ' + r.url + '\\n'); return r; }`;
    const register = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(hook)});`;
    const loads = async (...argv: string[]): Promise<string[]> => {
      const { stderr } = await exec(process.execPath, ['--import', register, ARTERIA, ...argv]);
      return [...stderr.matchAll(/^loads (\S+)$/gm)].map((m) => m[1]!);
    };
    const heavy = /\/(platform|worker|ingest|gateway|engine-[a-z]+|inference)\/dist\/|\/node_modules\/(@aws-sdk|onnxruntime-node|aedes|nats)\//;
    for (const argv of [['--version'], ['--help'], ['plan', '--devices', '50']]) {
      const loaded = await loads(...argv);
      expect(loaded.some((url) => url.endsWith('/cli/dist/commands.js')), argv.join(' ')).toBe(true);
      expect(loaded.filter((url) => heavy.test(url)), argv.join(' ')).toEqual([]);
    }
    // The pattern would see the platform where a command needs it; the Kubernetes client
    // (about 1,800 modules) waits for a Kubernetes scale target.
    const config = await loads('config', '--help');
    expect(config.some((url) => url.includes('/platform/dist/'))).toBe(true);
    expect(config.filter((url) => url.includes('/@kubernetes/'))).toEqual([]);
  });

  it('answer --help on commands that used to refuse it', { timeout: 300_000 }, async () => {
    const [ingest, doctor] = await Promise.all([spawnBin(ARTERIA, ['ingest', '--help']), spawnBin(GATEWAY, ['doctor', '--help'])]);
    expect(ingest.code).toBe(0);
    expect(ingest.stdout).toMatch(/arteria ingest/);
    expect(doctor.code).toBe(0);
    expect(doctor.stdout).toMatch(/--min-free-gb/);
  });

  // Each spawn loads the whole command (seconds on a busy machine): they run side by side.
  it('exit 2 on a command line they cannot read, 78 on a bad configuration, 1 on a failure', { timeout: 300_000 }, async () => {
    const [unknown, flag, key, port, gatewayFlag, gatewayConfig, missing] = await Promise.all([
      spawnBin(ARTERIA, ['frobnicate']),
      spawnBin(ARTERIA, ['plan', '--devicez', '3']),
      spawnBin(ARTERIA, ['ingest', '--no-such-key', '1']),
      spawnBin(ARTERIA, ['ingest', '--http-port', 'eighty']),
      spawnBin(GATEWAY, ['run', '--confg', 'x.json']),
      spawnBin(GATEWAY, ['run', '--config', '/nonexistent/gateway.json']),
      // A plain failure: the file to send does not exist.
      spawnBin(ARTERIA, ['gateway', 'send', '/nonexistent/run.dcm', '--token', 'x']),
    ]);
    expect(unknown).toMatchObject({ code: EXIT.usage, stderr: expect.stringMatching(/unknown command "frobnicate"/) as string });
    expect(flag).toMatchObject({ code: EXIT.usage, stderr: expect.stringMatching(/USAGE: .*--devicez/) as string });
    expect(key).toMatchObject({ code: EXIT.usage, stderr: expect.stringMatching(/USAGE: unknown option "--no-such-key"/) as string });
    expect(port).toMatchObject({ code: EXIT.config, stderr: expect.stringMatching(/CONFIG_INVALID: --http-port/) as string });
    expect(gatewayFlag).toMatchObject({ code: EXIT.usage });
    expect(gatewayConfig).toMatchObject({ code: EXIT.config, stderr: expect.stringMatching(/CONFIG_INVALID: cannot read/) as string });
    expect(missing).toMatchObject({ code: EXIT.failure, stderr: expect.stringMatching(/ENOENT/) as string });
  });

  it('the gateway systemd unit does not restart on a configuration error', async () => {
    const unit = await readFile(new URL('deploy/gateway/arteria-gateway.service', ROOT), 'utf8');
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=.*\b78\b/m);
  });
});
