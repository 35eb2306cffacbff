import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'socket.io';

/**
 * Client authentication for the relay: each client sends a JWT in the handshake
 * (`io(url, { auth: { token } })`), signed HS256 with the key the operator keeps in a Secret.
 * Your backend mints the tokens for users it has signed in; the servers only verify them, so no
 * session store is shared. `exp` is required: a leaked token must stop working by itself.
 */

/** Environment variable holding the HS256 key (from a Secret). */
export const CLIENT_AUTH_KEY_ENV = 'SOCKETFLEET_CLIENT_AUTH_KEY';
/** Keys shorter than this are guessable offline from one token. */
export const MIN_KEY_BYTES = 32;
/** Clock skew tolerated between the token issuer and the servers. */
const LEEWAY_SECONDS = 30;

export type Verified = { ok: true; subject: string | undefined } | { ok: false; reason: string };

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Verifies a compact HS256 JWT: signature, alg, exp (required) and nbf. */
export function verifyToken(token: unknown, key: Buffer, nowSeconds: number): Verified {
  if (typeof token !== 'string' || token === '')
    return { ok: false, reason: 'no token in the handshake auth' };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'token is not a JWT' };
  const [head, body, sig] = parts as [string, string, string];
  let header: { alg?: unknown };
  let claims: { exp?: unknown; nbf?: unknown; sub?: unknown };
  try {
    header = b64urlJson(head) as typeof header;
    claims = b64urlJson(body) as typeof claims;
  } catch {
    return { ok: false, reason: 'token is not a JWT' };
  }
  // Only HS256: accepting the header's choice of algorithm is the classic JWT hole.
  if (header.alg !== 'HS256') return { ok: false, reason: 'token must be signed HS256' };
  const want = createHmac('sha256', key).update(`${head}.${body}`).digest();
  const got = Buffer.from(sig, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want))
    return { ok: false, reason: 'bad token signature' };
  if (typeof claims.exp !== 'number') return { ok: false, reason: 'token has no exp' };
  if (claims.exp + LEEWAY_SECONDS < nowSeconds) return { ok: false, reason: 'token expired' };
  if (typeof claims.nbf === 'number' && claims.nbf - LEEWAY_SECONDS > nowSeconds)
    return { ok: false, reason: 'token not valid yet' };
  return { ok: true, subject: typeof claims.sub === 'string' ? claims.sub : undefined };
}

/** Mints a token (for tests and for backends written in Node). */
export function signToken(claims: Record<string, unknown>, key: Buffer): string {
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * Socket.IO middleware: refuses the connection (connect_error "unauthorized: <reason>") unless
 * the handshake carries a valid token; the subject is kept as socket.data.user.
 */
export function clientAuthMiddleware(
  key: Buffer,
  now: () => number = () => Date.now() / 1000,
): (socket: Socket, next: (err?: Error) => void) => void {
  if (key.length < MIN_KEY_BYTES) {
    throw new Error(
      `${CLIENT_AUTH_KEY_ENV} must hold at least ${MIN_KEY_BYTES} bytes; generate one with: openssl rand -base64 48`,
    );
  }
  return (socket, next) => {
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const result = verifyToken(auth?.token, key, now());
    if (!result.ok) {
      next(new Error(`unauthorized: ${result.reason}`));
      return;
    }
    (socket.data as { user?: string }).user = result.subject;
    next();
  };
}
