/**
 * nginx ip_hash keys on the first three octets, so every client that should look like a distinct
 * user needs its own /24. The whole of 127.0.0.0/8 is routed to loopback on Linux, so binding
 * 127.X.Y.1 needs no interface setup.
 */
export function sourceAddress(index: number): string {
  const slot = index % (254 * 254);
  const x = Math.floor(slot / 254) + 1;
  const y = (slot % 254) + 1;
  return `127.${x}.${y}.1`;
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The room of client i. Not `i % rooms`: source addresses are assigned in order too, and nginx's
 * ip_hash is nearly linear in the last octet, so `i % rooms` would put every member of a room on
 * the same server and make ip-hash routing look like room affinity. A 32-bit mix decorrelates them.
 */
export function roomOf(client: number, rooms: number): number {
  let h = (client + 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h % rooms;
}
