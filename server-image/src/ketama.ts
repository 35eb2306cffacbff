/**
 * Shared with the operator (which imports it like the config contract).
 * The ring nginx builds for `hash KEY consistent` (ngx_http_upstream_hash_module, ketama as in
 * Cache::Memcached::Fast), reproduced so the operator can tell, for any client key, which server
 * the gateway sends it to now: after a scale-up, exactly the clients whose owner changed are the
 * ones worth moving. Behaviour, as nginx documents and implements it: each server gets
 * 160 x weight points; point k of a server is crc32(host, a zero byte, port, the previous point
 * as four little-endian bytes), starting from 0; a key goes to the first point at or after
 * crc32(key), wrapping around. Pure.
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) state update without the final inversion, so it can continue over parts. */
function update(state: number, bytes: Uint8Array): number {
  let c = state;
  for (const b of bytes) c = (TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return c >>> 0;
}

export function crc32(bytes: Uint8Array): number {
  return (update(0xffffffff, bytes) ^ 0xffffffff) >>> 0;
}

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** host and port as nginx splits the server string: at the last colon followed only by digits. */
function splitServer(server: string): [string, string] {
  const m = /^(.*):(\d+)$/.exec(server);
  return m ? [m[1] ?? '', m[2] ?? ''] : [server, ''];
}

export interface RingServer {
  /** Exactly as written after `server` in the upstream block, e.g. `10.0.0.7:3000`. */
  server: string;
  weight?: number;
}

export class KetamaRing {
  private readonly hashes: Uint32Array;
  private readonly owners: string[];

  constructor(servers: readonly RingServer[]) {
    const points: { hash: number; server: string }[] = [];
    for (const s of servers) {
      const [host, port] = splitServer(s.server);
      const base = update(update(update(0xffffffff, utf8(host)), new Uint8Array([0])), utf8(port));
      const prev = new Uint8Array(4);
      const view = new DataView(prev.buffer);
      for (let j = 0; j < 160 * (s.weight ?? 1); j++) {
        const hash = (update(base, prev) ^ 0xffffffff) >>> 0;
        points.push({ hash, server: s.server });
        view.setUint32(0, hash, true);
      }
    }
    points.sort((a, b) => a.hash - b.hash);
    // nginx keeps one point per hash value.
    const unique = points.filter((p, i) => i === 0 || p.hash !== points[i - 1]?.hash);
    this.hashes = Uint32Array.from(unique.map((p) => p.hash));
    this.owners = unique.map((p) => p.server);
  }

  /** The server nginx picks first for this key (before any retry on a failed server). */
  owner(key: string): string | undefined {
    const n = this.hashes.length;
    if (n === 0) return undefined;
    const h = crc32(utf8(key));
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.hashes[mid] ?? 0) < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo % n];
  }
}
