/** Where the gateway reports what an operator of the edge box should see. */
export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function line(level: string, message: string, fields?: Record<string, unknown>): string {
  return `${JSON.stringify({ level, at: new Date().toISOString(), component: 'gateway', message, ...fields })}\n`;
}

/** JSON lines on stderr (journald and container runtimes collect them). */
export const stderrLogger: GatewayLogger = {
  info: (message, fields) => process.stderr.write(line('info', message, fields)),
  warn: (message, fields) => process.stderr.write(line('warn', message, fields)),
  error: (message, fields) => process.stderr.write(line('error', message, fields)),
};

export const errorFields = (err: unknown): Record<string, unknown> =>
  err instanceof Error ? { error: err.message, code: (err as { code?: unknown }).code } : { error: String(err) };
