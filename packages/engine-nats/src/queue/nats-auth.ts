import { readFile } from 'node:fs/promises';
import { AuthorizationError, UserAuthenticationExpiredError, credsAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

/**
 * How Arteria's NATS connections (queue, ledger, capture ingest) authenticate: a user and
 * password, or a credentials file's content (user JWT and nkey seed, for operator-mode
 * servers). Neither: the server's `no_auth_user`.
 */
export const NatsAuth = z
  .strictObject({
    user: z.string().min(1).optional(),
    pass: z.string().min(1).optional(),
    /** Content of a `.creds` file (`nsc generate creds`). */
    creds: z.instanceof(Uint8Array).optional(),
  })
  .refine((a) => (a.user === undefined) === (a.pass === undefined), 'user and pass go together')
  .refine((a) => a.creds === undefined || a.user === undefined, 'either user and pass, or creds');
export type NatsAuth = z.output<typeof NatsAuth>;

/** The connect() options carrying `auth`. */
export function natsConnectAuth(auth: NatsAuth | undefined): Pick<ConnectionOptions, 'user' | 'pass' | 'authenticator'> {
  if (auth?.creds !== undefined) return { authenticator: credsAuthenticator(auth.creds) };
  if (auth?.user !== undefined) return { user: auth.user, ...(auth.pass === undefined ? {} : { pass: auth.pass }) };
  return {};
}

/**
 * Reads the credentials named by the cluster config (`nats.user` with `nats.passwordFile`,
 * or `nats.credsFile`); secrets live in files, never in the config itself. Undefined when
 * none is set.
 */
export async function readNatsAuth(files: { user: string; passwordFile: string; credsFile: string }): Promise<NatsAuth | undefined> {
  if (files.credsFile !== '') {
    if (files.user !== '' || files.passwordFile !== '') throw new ArteriaError('CONFIG_INVALID', 'nats: set either nats.credsFile, or nats.user with nats.passwordFile, not both');
    return { creds: await readSecret(files.credsFile, 'nats.credsFile') };
  }
  if ((files.user === '') !== (files.passwordFile === '')) throw new ArteriaError('CONFIG_INVALID', 'nats: nats.user and nats.passwordFile go together');
  if (files.user === '') return undefined;
  // One trailing newline (as `echo` or a Kubernetes secret writes it) is not part of the password.
  const pass = Buffer.from(await readSecret(files.passwordFile, 'nats.passwordFile')).toString('utf8').replace(/\r?\n$/, '');
  if (pass === '') throw new ArteriaError('CONFIG_INVALID', `nats.passwordFile: ${files.passwordFile} is empty`);
  return { user: files.user, pass };
}

async function readSecret(file: string, key: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The error for a failed connect: refused credentials are a configuration problem
 * (CONFIG_INVALID, not retried); anything else is the server being unreachable.
 */
export function natsConnectError(servers: string | string[], err: unknown): ArteriaError {
  const where = Array.isArray(servers) ? servers.join(',') : servers;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError) {
    return new ArteriaError('CONFIG_INVALID', `NATS at ${where} refused the platform's credentials (${message}): set nats.user with nats.passwordFile, or nats.credsFile`, { cause: err });
  }
  return new ArteriaError('QUEUE_UNAVAILABLE', `cannot connect to NATS at ${where}: ${message}`, { cause: err });
}

/**
 * A NATS request that failed while connected once (timeout, connection closed): names the
 * dependency and what to check, instead of the client's bare `timeout`.
 */
export function natsOutageError(servers: string | readonly string[], operation: string, err: unknown): ArteriaError {
  const where = typeof servers === 'string' ? servers : servers.join(',');
  const message = err instanceof Error ? err.message : String(err);
  return new ArteriaError(
    'QUEUE_UNAVAILABLE',
    `${operation}: NATS JetStream at ${where} did not answer (${message}); check that nats-server is running and reachable with JetStream enabled (its /healthz?js-enabled-only=true on the monitoring port). Retrying.`,
    { cause: err },
  );
}
