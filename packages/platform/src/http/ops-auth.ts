import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';

/**
 * Who may read the operations surface (dashboard, /api/*, /metrics): whoever holds the
 * operator token, as `Authorization: Bearer <token>` (Prometheus, scripts) or as the
 * session cookie the login page gets for it (browsers). Sessions are stateless: an expiry
 * and an HMAC keyed by the token, so changing the token ends every session.
 */
export const SESSION_COOKIE = 'arteria_session';
const SESSION_TTL_MS = 12 * 3600_000;

export type Verdict = { ok: true } | { ok: false; reason: 'missing credential' | 'wrong token' | 'expired or invalid session' };

export class OpsAuth {
  readonly #token: Buffer;

  constructor(token: string) {
    this.#token = Buffer.from(token);
  }

  check(req: IncomingMessage, now = Date.now()): Verdict {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      return match?.[1] !== undefined && this.#tokenMatches(match[1]) ? { ok: true } : { ok: false, reason: 'wrong token' };
    }
    const session = cookie(req, SESSION_COOKIE);
    if (session === undefined) return { ok: false, reason: 'missing credential' };
    return this.#sessionValid(session, now) ? { ok: true } : { ok: false, reason: 'expired or invalid session' };
  }

  /** The Set-Cookie value of a new session; Secure when served over TLS. */
  sessionCookie(secure: boolean, now = Date.now()): string {
    const expires = now + SESSION_TTL_MS;
    const value = `${expires}.${this.#mac(expires)}`;
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${secure ? '; Secure' : ''}`;
  }

  #tokenMatches(given: string): boolean {
    const g = Buffer.from(given);
    return g.length === this.#token.length && timingSafeEqual(g, this.#token);
  }

  #mac(expires: number): string {
    return createHmac('sha256', this.#token).update(`arteria-ops-session/1\n${expires}`).digest('base64url');
  }

  #sessionValid(value: string, now: number): boolean {
    const [expiresText = '', mac = ''] = value.split('.');
    const expires = Number(expiresText);
    if (!Number.isSafeInteger(expires) || expires < now) return false;
    const want = Buffer.from(this.#mac(expires));
    const got = Buffer.from(mac);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export const newOpsToken = (): string => randomBytes(24).toString('base64url');

/**
 * The operator token of a deployment without one configured: `{dataDir}/ops-token`
 * (0600), made on first start, shared by the processes on that machine.
 */
export async function loadOrCreateOpsToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'ops-token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const token = newOpsToken();
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readFile(file, 'utf8')).trim();
  }
}
