// freePort() for `socketfleet up`: ports below the kernel's ephemeral range (an outgoing
// connection can never take one before its process binds it), each handed out once, and free.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ephemeralLow, freePort } from '../../operator/local/ports.js';

const listen = (port: number): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });

describe('freePort', () => {
  it('picks distinct free ports below the ephemeral range', async () => {
    const low = ephemeralLow();
    const ports = await Promise.all(Array.from({ length: 200 }, () => freePort()));
    expect(new Set(ports).size).toBe(200);
    // Debian's default range starts at 32768; a machine whose range starts near 10000 gets the
    // kernel's picks instead, and only distinct free ports are checked there.
    if (low !== undefined && low >= 11_000)
      expect(ports.every((p) => p >= 10_000 && p < low)).toBe(true);
    const servers = await Promise.all(ports.map(listen));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
});
