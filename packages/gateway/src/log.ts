import { pino, type DestinationStream, type Logger } from 'pino';

/** Where the gateway reports what an operator of the edge box should see. */
export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const GATEWAY_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type GatewayLogLevel = (typeof GATEWAY_LOG_LEVELS)[number];

/** A level name from text (LOG_LEVEL), or `fallback` when it is none. */
export const gatewayLogLevel = (text: string | undefined, fallback: GatewayLogLevel = 'info'): GatewayLogLevel =>
  GATEWAY_LOG_LEVELS.find((level) => level === text?.trim().toLowerCase()) ?? fallback;

/** Fields that may hold a credential: replaced before a line is written. */
const REDACTED = ['token', 'password', 'secret', 'authorization', 'secretAccessKey', 'tenantSecret', 'key'];

/**
 * The gateway process's logger: JSON lines (the platform's format: `level` as a word,
 * ISO `time`, `msg`, `role: "gateway"`), on stderr unless `destination` says otherwise.
 * Created once by the command that runs the gateway and handed to its parts.
 */
export function createGatewayLogger(options: { level?: GatewayLogLevel; destination?: DestinationStream; fields?: Record<string, unknown> } = {}): GatewayLogger {
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { role: 'gateway', pid: process.pid, ...options.fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED, ...REDACTED.map((name) => `*.${name}`)], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
  return pinoGatewayLogger(logger);
}

/** A GatewayLogger writing through a pino logger (the platform's, in `arteria up`). */
export function pinoGatewayLogger(logger: Logger): GatewayLogger {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

function line(level: string, message: string, fields?: Record<string, unknown>): string {
  return `${JSON.stringify({ level, time: new Date().toISOString(), role: 'gateway', msg: message, ...fields })}\n`;
}

/** JSON lines on stderr, the same shape as createGatewayLogger's: the default of a Gateway built without a logger. */
export const stderrLogger: GatewayLogger = {
  info: (message, fields) => process.stderr.write(line('info', message, fields)),
  warn: (message, fields) => process.stderr.write(line('warn', message, fields)),
  error: (message, fields) => process.stderr.write(line('error', message, fields)),
};

export const errorFields = (err: unknown): Record<string, unknown> =>
  err instanceof Error ? { error: err.message, code: (err as { code?: unknown }).code } : { error: String(err) };
