import { ArteriaError, toArteriaError, type ErrorCode } from '@arteria/protocol';

/** Exit statuses of both binaries (sysexits.h where one applies). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

/**
 * Codes that no restart can fix: the process exits 78 (EX_CONFIG), which the systemd
 * units name in RestartPreventExitStatus so a bad configuration does not loop.
 */
export const CONFIGURATION_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CONFIG_INVALID']);

export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CommandContext {
  readonly io: CommandIo;
  /** The names that led here, e.g. ['devices', 'list']. */
  readonly path: readonly string[];
}

/**
 * One entry of a command table. A command with subcommands runs itself (`run`) when the
 * next word names none of them; without `run` it is only a group.
 */
export interface Command {
  readonly name: string;
  /** One line for the parent's list. */
  readonly summary: string;
  /**
   * What `--help` prints; without it, the summary and the subcommands. A function loads it
   * when asked, so that a table can name commands whose modules it has not imported.
   */
  readonly help?: string | (() => Promise<string>);
  readonly run?: (argv: string[], context: CommandContext) => Promise<number>;
  readonly subcommands?: readonly Command[];
}

export interface Program {
  readonly name: string;
  readonly version: string;
  readonly summary: string;
  readonly commands: readonly Command[];
  /** Printed after the command list by `--help`. */
  readonly epilogue?: string;
}

/** Every command path of a program, parents first: what a help walk visits. */
export function commandPaths(program: Program): string[][] {
  const out: string[][] = [];
  const visit = (commands: readonly Command[], prefix: string[]): void => {
    for (const c of commands) {
      out.push([...prefix, c.name]);
      visit(c.subcommands ?? [], [...prefix, c.name]);
    }
  };
  visit(program.commands, []);
  return out;
}

function list(commands: readonly Command[], prefix: string): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return commands.map((c) => `  ${prefix}${c.name.padEnd(width)}${c.summary}`).join('\n');
}

export function programHelp(program: Program): string {
  const epilogue = program.epilogue === undefined ? '' : `\n\n${program.epilogue}`;
  return `${program.name} ${program.version}: ${program.summary}

${list(program.commands, `${program.name} `)}

  ${program.name} <command> --help   options of one command
  ${program.name} --version${epilogue}`;
}

export async function commandHelp(program: Program, path: readonly string[], command: Command): Promise<string> {
  const title = `${program.name} ${path.join(' ')}`;
  const own = (typeof command.help === 'function' ? await command.help() : command.help) ?? `${title}: ${command.summary}`;
  const subs = command.subcommands ?? [];
  return subs.length === 0 ? own : `${own}\n\n${list(subs, `${title} `)}`;
}

/** A mistake in the command line itself: the dispatcher answers it with exit status 2. */
export function usageError(message: string): ArteriaError {
  return new ArteriaError('USAGE', message);
}

const isParseArgsError = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
};

export function exitCodeFor(error: ArteriaError): number {
  if (error.code === 'USAGE') return EXIT.usage;
  return CONFIGURATION_CODES.has(error.code) ? EXIT.config : EXIT.failure;
}

/**
 * Dispatches argv through the table: `--help`/`-h` anywhere before `--` prints the help
 * of the deepest command named, `--version` the program's version; a thrown error is
 * printed with its code and mapped to an exit status. Never throws.
 */
export async function runProgram(program: Program, argv: readonly string[], io: CommandIo): Promise<number> {
  const end = argv.indexOf('--');
  const words = end === -1 ? [...argv] : argv.slice(0, end);
  const helpAsked = words[0] === 'help' || words.includes('--help') || words.includes('-h');
  if (words.includes('--version')) {
    io.stdout(`${program.name} ${program.version}\n`);
    return EXIT.ok;
  }
  const rest = words[0] === 'help' ? argv.slice(1) : [...argv];
  let commands = program.commands;
  let command: Command | undefined;
  const path: string[] = [];
  for (;;) {
    const next = commands.find((c) => c.name === rest[0]);
    if (next === undefined) break;
    command = next;
    path.push(next.name);
    rest.shift();
    commands = next.subcommands ?? [];
  }
  if (command === undefined) {
    if (helpAsked || rest.length === 0) {
      io.stdout(`${programHelp(program)}\n`);
      return EXIT.ok;
    }
    io.stderr(`${program.name}: unknown command ${JSON.stringify(rest[0])}\n\n${programHelp(program)}\n`);
    return EXIT.usage;
  }
  try {
    if (helpAsked) {
      io.stdout(`${await commandHelp(program, path, command)}\n`);
      return EXIT.ok;
    }
    if (command.run === undefined) {
      const what = rest[0] === undefined ? 'name a subcommand' : `unknown subcommand ${JSON.stringify(rest[0])}`;
      io.stderr(`${program.name} ${path.join(' ')}: ${what}\n\n${await commandHelp(program, path, command)}\n`);
      return EXIT.usage;
    }
    return await command.run(rest, { io, path });
  } catch (err: unknown) {
    const error = isParseArgsError(err) ? usageError((err as Error).message) : toArteriaError(err);
    const hint = error.code === 'USAGE' ? `\n(${program.name} ${path.join(' ')} --help lists the options)` : '';
    io.stderr(`${program.name}: ${error.code}: ${error.message}${hint}\n`);
    return exitCodeFor(error);
  }
}

/** The process entry point of a binary: run, then exit with the status. */
export function main(program: Program): void {
  const io: CommandIo = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };
  // runProgram never rejects; exit() because a library may keep a handle open after close.
  void runProgram(program, process.argv.slice(2), io).then((code) => process.exit(code));
}
