import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { EXIT, commandPaths, runProgram, usageError, type Command, type Program } from '@arteria/command';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

const ran: string[][] = [];
const leaf = (name: string, run: (argv: string[]) => Promise<number>): Command => ({ name, summary: `${name} things`, help: `HELP ${name}`, run });

const PROGRAM: Program = {
  name: 'tool',
  version: '9.8.7',
  summary: 'a test program',
  commands: [
    leaf('ok', (argv) => {
      ran.push(argv);
      return Promise.resolve(0);
    }),
    leaf('flags', (argv) => {
      parseArgs({ args: argv, strict: true, options: { n: { type: 'string' } } });
      return Promise.resolve(0);
    }),
    leaf('bad-config', () => Promise.reject(new ArteriaError('CONFIG_INVALID', 'port must be a number'))),
    leaf('missing', () => Promise.reject(usageError('name a file'))),
    leaf('broken', () => Promise.reject(new Error('disk on fire'))),
    leaf('outage', () => Promise.reject(new ArteriaError('STORAGE_UNAVAILABLE', 'no store'))),
    {
      name: 'group',
      summary: 'a group',
      subcommands: [leaf('inner', () => Promise.resolve(0)), { name: 'deeper', summary: 'deeper group', subcommands: [leaf('leaf', () => Promise.resolve(0))] }],
    },
  ],
};

async function run(...argv: string[]): Promise<Captured> {
  const out = { stdout: '', stderr: '' };
  const code = await runProgram(PROGRAM, argv, { stdout: (t) => (out.stdout += t), stderr: (t) => (out.stderr += t) });
  return { code, ...out };
}

describe('command dispatcher', () => {
  it('lists every command path, parents first', () => {
    expect(commandPaths(PROGRAM).map((p) => p.join(' '))).toEqual(['ok', 'flags', 'bad-config', 'missing', 'broken', 'outage', 'group', 'group inner', 'group deeper', 'group deeper leaf']);
  });

  it('answers --help, -h and help on every path with that command\'s help and exit 0, without running it', async () => {
    ran.length = 0;
    for (const path of commandPaths(PROGRAM)) {
      for (const argv of [[...path, '--help'], [...path, '-h'], ['help', ...path], [...path, '--some-flag', '--help']]) {
        const r = await run(...argv);
        expect(r, argv.join(' ')).toMatchObject({ code: 0, stderr: '' });
        const last = path.at(-1) ?? '';
        expect(r.stdout).toMatch(new RegExp(`HELP ${last}|tool ${path.join(' ')}: ${last} things|tool ${path.join(' ')}: a group|deeper group`));
      }
    }
    expect(ran).toEqual([]);
    // A group's help lists its subcommands.
    expect((await run('group', '--help')).stdout).toMatch(/tool group inner\s+inner things/);
  });

  it('answers --version anywhere', async () => {
    for (const argv of [['--version'], ['ok', '--version'], ['group', 'deeper', 'leaf', '--version']]) expect(await run(...argv)).toEqual({ code: 0, stdout: 'tool 9.8.7\n', stderr: '' });
  });

  it('prints the program help with no arguments', async () => {
    const r = await run();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tool 9\.8\.7: a test program/);
    expect(r.stdout).toMatch(/tool group\s+a group/);
  });

  it('passes the words after the command through, and leaves --help after -- to the command', async () => {
    ran.length = 0;
    expect((await run('ok', 'a', '--b', '--', '--help')).code).toBe(0);
    expect(ran).toEqual([['a', '--b', '--', '--help']]);
  });

  it('exits 2 on a command line it cannot read', async () => {
    const unknown = await run('frobnicate');
    expect(unknown.code).toBe(EXIT.usage);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    expect((await run('group')).code).toBe(EXIT.usage);
    expect((await run('group', 'nope')).stderr).toMatch(/unknown subcommand "nope"/);
    const flag = await run('flags', '--nope');
    expect(flag.code).toBe(EXIT.usage);
    expect(flag.stderr).toMatch(/USAGE: .*--nope.*\n\(tool flags --help lists the options\)/);
    expect(await run('missing')).toMatchObject({ code: EXIT.usage, stderr: expect.stringMatching(/USAGE: name a file/) as string });
  });

  it('exits 78 on a configuration error and 1 on any other failure, naming the code', async () => {
    expect(await run('bad-config')).toMatchObject({ code: EXIT.config, stderr: 'tool: CONFIG_INVALID: port must be a number\n' });
    expect(await run('broken')).toMatchObject({ code: EXIT.failure, stderr: 'tool: INTERNAL: disk on fire\n' });
    expect(await run('outage')).toMatchObject({ code: EXIT.failure, stderr: 'tool: STORAGE_UNAVAILABLE: no store\n' });
    expect(await run('flags', '--n', '3')).toMatchObject({ code: EXIT.ok });
  });
});
