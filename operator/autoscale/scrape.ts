import http from 'node:http';
import {
  readGatewayMetrics,
  readServerMetrics,
  type GatewayReading,
  type ServerReading,
} from './prom-text.js';

/** A scrape slower than this counts as missing: a pod that slow is itself a finding. */
export const SCRAPE_TIMEOUT_MS = 2000;
/** A /metrics page is a few tens of KiB; anything far larger is not our server. */
const MAX_BYTES = 4 * 1024 * 1024;

export type Scraper = (url: string) => Promise<ServerReading>;
/** Reads one gateway sync sidecar, given its base URL (`http://ip:port`). */
export type GatewayScraper = (base: string) => Promise<GatewayReading>;

/** GETs a page over plain HTTP (the ops and sidecar ports serve no TLS); undefined on 404. */
function get(url: string): Promise<string | undefined> {
  return new Promise<string | undefined>((resolve, reject) => {
    const req = http.get(url, { timeout: SCRAPE_TIMEOUT_MS }, (res) => {
      if (res.statusCode === 404) {
        res.resume();
        resolve(undefined);
        return;
      }
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
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out.`)));
    req.on('error', reject);
  });
}

/** GETs one server's /metrics and reads it. */
export const scrapeServer: Scraper = async (url) => {
  const text = await get(url);
  if (text === undefined) throw new Error(`GET ${url} answered 404.`);
  return readServerMetrics(text);
};

/** The sidecar's /metrics; while it reports a refusal, also nginx's words from /rejection. */
export const scrapeGateway: GatewayScraper = async (base) => {
  const text = await get(`${base}/metrics`);
  if (text === undefined) throw new Error(`GET ${base}/metrics answered 404.`);
  const reading = readGatewayMetrics(text);
  if (!reading.configRejected) return reading;
  const body = await get(`${base}/rejection`);
  let parsed: unknown;
  try {
    parsed = body === undefined ? undefined : JSON.parse(body);
  } catch {
    // The gauge alone still says nginx refused; only its words are missing.
  }
  const message =
    typeof parsed === 'object' && parsed !== null && 'message' in parsed
      ? parsed.message
      : undefined;
  return typeof message === 'string' ? { ...reading, message } : reading;
};
