import { connect } from 'node:net';

/**
 * Sends a plaintext RESP `PING` to a port on loopback and returns whatever came back before the
 * server closed the connection or `waitMs` passed: a TLS-only port answers no `PONG`.
 */
export function plaintextPingReply(port: number, waitMs: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('PING\r\n'));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    sock.on('close', () => resolve(got));
    sock.on('error', () => resolve(got));
    setTimeout(() => sock.destroy(), waitMs);
  });
}
