import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Levels from most to least verbose; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** The process's role (`ingest`, `worker`, `autoscaler`, `dashboard`, `platform`, `gateway`), a field of every line. */
  role: string;
  /** Which instance of the role (config `instanceId`), a field of every line when given. */
  instance?: string;
  /** Default `info`. */
  level?: LogLevel;
  /** Where the JSON lines go; default stderr (stdout carries the one `ready` line scripts wait for). */
  destination?: DestinationStream;
}

/**
 * Field names that may hold a credential. Their values are replaced before a line is
 * written, so a credential that reaches a log call by mistake still does not reach the log.
 */
const REDACTED = ['token', 'password', 'secret', 'authorization', 'secretAccessKey', 'platformSecret', 'tenantSecret', 'opsToken'];
const REDACT_PATHS = [...REDACTED, ...REDACTED.map((name) => `*.${name}`), 'headers.cookie', 'req.headers.authorization'];

/**
 * The process's logger: one JSON object per line, `level` as a word, ISO time, the
 * role and instance on every line. Created once at the process's start and handed to
 * each part that logs (nothing reaches for a logger of its own).
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { role: options.role, ...(options.instance === undefined ? {} : { instance: options.instance }), pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that writes nothing: the default of parts constructed without one (tests, libraries). */
export const quietLogger = (): Logger => pino({ level: 'silent' });

/** A level name from text (LOG_LEVEL, a flag), or undefined when it is not one. */
export function parseLogLevel(text: string | undefined): LogLevel | undefined {
  const lower = text?.trim().toLowerCase();
  return LOG_LEVELS.find((level) => level === lower);
}

/** Security events (refused logins, denied topics, refused operator requests) as warnings with `type: "security"`. */
export const securitySink =
  (logger: Logger) =>
  (event: { event: string; identity: string; reason: string }): void => {
    logger.warn({ type: 'security', ...event }, `security: ${event.event} for ${event.identity}: ${event.reason}`);
  };
