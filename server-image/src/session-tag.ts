/**
 * Where a Socket.IO session lives, written into its id so the gateway can send every request of
 * the session to that server without hashing the client's address again: a hash ring changes
 * whenever a server joins or leaves, and a long-polling client whose next request lands on
 * another server gets "Session ID unknown" (400) while its own server is still up (draining, or
 * simply no longer first on the ring). The server prefixes each engine.io session id with the
 * tag of the address the gateway reaches it at, and the gateway's sidecar renders one upstream
 * per tag from the same EndpointSlice addresses (operator/desired/nginx.ts).
 */

/** Set by the pod spec from status.podIP (and by `up` and tests to the loopback address). */
export const SESSION_ADDRESS_ENV = 'SOCKETFLEET_SESSION_ADDRESS';

/** Hex characters of a tag; a session id starts with them. */
export const SESSION_TAG_LENGTH = 8;

/**
 * The tag of a server reached at `ip`:`port`: 32-bit FNV-1a of "ip:port" in hex. Not a secret
 * and not a security boundary: a forged tag only sends the request to another server, which
 * answers "Session ID unknown" as it would have anyway.
 */
export function sessionTag(ip: string, port: number): string {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(`${ip}:${port}`, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(SESSION_TAG_LENGTH, '0');
}
