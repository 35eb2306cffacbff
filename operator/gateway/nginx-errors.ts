import dgram from 'node:dgram';

/**
 * nginx's own words when it refuses a configuration. In the gateway pod nginx runs in the other
 * container and checks a new configuration itself on SIGHUP; when it refuses it, it logs an
 * `[emerg]` line and keeps the old one, and the sidecar could only see that no new workers
 * came. So nginx.conf sends its emerg-level errors (and nothing else) by syslog over UDP on the
 * pod's loopback to the sidecar, which keeps the last one for its metrics and the operator.
 */
export interface NginxError {
  /** When the sidecar received it (ms since the epoch). */
  at: number;
  /** nginx's message without its timestamp and pid, e.g. `invalid parameter "x" in /f:3`. */
  message: string;
}

/** Longest message kept: an error names a directive and a file, never a page of text. */
const MAX_MESSAGE = 500;

/**
 * The message of the first `[emerg]` line in nginx's output, whether a syslog datagram
 * (`<PRI>Mmm dd hh:mm:ss nginx: 2026/11/30 01:52:44 [emerg] 25603#25603: msg`) or the stderr of
 * `nginx -t` (`nginx: [emerg] msg`); undefined when there is none.
 */
export function emergMessage(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const at = line.indexOf('[emerg] ');
    if (at < 0) continue;
    const rest = line.slice(at + '[emerg] '.length);
    // The error log's own format puts "PID#TID: " first; nginx -t's stderr does not.
    const m = /^\d+#\d+: /.exec(rest);
    const message = (m ? rest.slice(m[0].length) : rest).trim();
    if (message !== '') return message.slice(0, MAX_MESSAGE);
  }
  return undefined;
}

/** Receives nginx's syslog datagrams on 127.0.0.1 and keeps the last emerg message. */
export class NginxErrorListener {
  private last: NginxError | undefined;
  private readonly socket = dgram.createSocket('udp4');

  private constructor(private readonly now: () => number) {
    this.socket.on('message', (buf) => {
      const message = emergMessage(buf.toString('utf8'));
      if (message !== undefined) this.last = { at: this.now(), message };
    });
  }

  /** Binds loopback only: nothing outside the pod may put words in nginx's mouth. */
  static async listen(port: number, now: () => number = Date.now): Promise<NginxErrorListener> {
    const l = new NginxErrorListener(now);
    await new Promise<void>((resolve, reject) => {
      l.socket.once('error', reject);
      l.socket.bind(port, '127.0.0.1', () => {
        l.socket.off('error', reject);
        resolve();
      });
    });
    return l;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** The last emerg message received at or after `t`, if any. */
  since(t: number): string | undefined {
    return this.last !== undefined && this.last.at >= t ? this.last.message : undefined;
  }

  close(): void {
    this.socket.close();
  }
}
