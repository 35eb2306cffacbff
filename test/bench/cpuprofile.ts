import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface Hotspot {
  name: string;
  where: string;
  selfPercent: number;
}

function shortUrl(url: string): string {
  const i = url.lastIndexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length);
  const j = url.indexOf('/dist/');
  return j >= 0 ? url.slice(j + 1) : url.replace(/^file:\/\//, '');
}

/**
 * Self time by function over every .cpuprofile in dir (one per server process): where the
 * servers spend their CPU, the evidence issue 7 asks for when a target is not met.
 */
export function hotspots(dir: string, top = 15): Hotspot[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile;
    for (const n of p.nodes) {
      const hits = n.hitCount ?? 0;
      const fn = n.callFrame.functionName || '(anonymous)';
      // Percentages are of busy time: idle samples say how loaded, not where the work is.
      if (hits === 0 || fn === '(idle)') continue;
      const key = `${fn}\t${n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + hits);
      total += hits;
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, hits]) => {
      const [name = '', where = ''] = key.split('\t');
      return { name, where, selfPercent: total === 0 ? 0 : (hits / total) * 100 };
    });
}

export function formatHotspots(list: Hotspot[]): string {
  // selfPercent is a share of busy (non-idle) samples.
  return list
    .map((h) => `${h.selfPercent.toFixed(1).padStart(5)}%  ${h.name}  ${h.where}`)
    .join('\n');
}
