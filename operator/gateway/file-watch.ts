import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The file's content hash, or undefined while it does not exist (yet). */
function digest(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}

/**
 * Calls `changed` whenever a file's content differs from the last look. Polling, because a
 * Secret volume is updated by the kubelet swapping a symlinked directory, which inotify on the
 * file itself does not report; the kubelet syncs such volumes about once a minute anyway.
 */
export class FileWatch {
  private last: string | undefined;
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly path: string,
    intervalMs: number,
    private readonly changed: () => Promise<void>,
    private readonly failed: (err: unknown) => void,
  ) {
    this.last = digest(path);
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** Looks once; resolves after `changed` finished if the content differed. */
  async check(): Promise<boolean> {
    if (this.busy) return false;
    const now = digest(this.path);
    if (now === undefined || now === this.last) return false;
    this.busy = true;
    try {
      await this.changed();
      // Only a change that was acted on is remembered, so a failed reload is tried again.
      this.last = now;
      return true;
    } catch (err) {
      this.failed(err);
      return false;
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
