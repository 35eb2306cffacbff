import http from 'node:http';
import { readServerMetrics, type ServerReading } from './prom-text.js';

/** A scrape slower than this counts as missing: a pod that slow is itself a finding. */
export const SCRAPE_TIMEOUT_MS = 2000;
/** A /metrics page is a few tens of KiB; anything far larger is not our server. */
const MAX_BYTES = 4 * 1024 * 1024;

export type Scraper = (url: string) => Promise<ServerReading>;

/** GETs one server's /metrics over plain HTTP (the ops port serves no TLS) and reads it. */
export const scrapeServer: Scraper = (url) =>
  new Promise<ServerReading>((resolve, reject) => {
    const req = http.get(url, { timeout: SCRAPE_TIMEOUT_MS }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url} answered ${res.statusCode ?? 'no status'}.`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) {
          req.destroy(new Error(`GET ${url} sent more than ${MAX_BYTES} bytes.`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(readServerMetrics(Buffer.concat(chunks).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out.`)));
    req.on('error', reject);
  });
