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

/** The header a signed-in browser repeats on a state change (POST), from GET /api/csrf. */
export const CSRF_HEADER = 'x-arteria-csrf';

export type Verdict =
  | { ok: true; via: 'bearer' | 'session' }
  | { ok: false; reason: 'missing credential' | 'wrong token' | 'expired or invalid session' | 'missing or wrong CSRF token' | 'cross-origin request' };

export class OpsAuth {
  readonly #token: Buffer;

  constructor(token: string) {
    this.#token = Buffer.from(token);
  }

  check(req: IncomingMessage, now = Date.now()): Verdict {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      return match?.[1] !== undefined && this.#tokenMatches(match[1]) ? { ok: true, via: 'bearer' } : { ok: false, reason: 'wrong token' };
    }
    const session = cookie(req, SESSION_COOKIE);
    if (session === undefined) return { ok: false, reason: 'missing credential' };
    return this.#sessionValid(session, now) ? { ok: true, via: 'session' } : { ok: false, reason: 'expired or invalid session' };
  }

  /**
   * A state change (POST). A bearer token is never sent by a browser on its own, so it
   * needs nothing more. A session cookie is, so its request must also carry the CSRF token
   * bound to that session (the page reads it from GET /api/csrf, which another site cannot
   * read), and an Origin, when sent, must be this server's. SameSite=Strict on the cookie is
   * a second fence, not the only one.
   */
  checkWrite(req: IncomingMessage, now = Date.now()): Verdict {
    const verdict = this.check(req, now);
    if (!verdict.ok || verdict.via === 'bearer') return verdict;
    const origin = req.headers.origin;
    if (origin !== undefined && hostOf(origin) !== req.headers.host) return { ok: false, reason: 'cross-origin request' };
    const given = req.headers[CSRF_HEADER];
    const session = cookie(req, SESSION_COOKIE) ?? '';
    if (typeof given !== 'string') return { ok: false, reason: 'missing or wrong CSRF token' };
    const want = Buffer.from(this.csrfToken(session));
    const got = Buffer.from(given);
    return want.length === got.length && timingSafeEqual(want, got) ? verdict : { ok: false, reason: 'missing or wrong CSRF token' };
  }

  /** The CSRF token of a session: an HMAC of the session value, so it ends with the session. */
  csrfToken(sessionValue: string): string {
    return createHmac('sha256', this.#token).update(`arteria-ops-csrf/1\n${sessionValue}`).digest('base64url');
  }

  /** The CSRF token for this request's session; undefined for a bearer request (it needs none). */
  csrfTokenOf(req: IncomingMessage): string | undefined {
    const session = req.headers.authorization === undefined ? cookie(req, SESSION_COOKIE) : undefined;
    return session === undefined ? undefined : this.csrfToken(session);
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

/** The host:port of an Origin header; undefined for `null` or anything unreadable. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
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
