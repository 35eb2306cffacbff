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
