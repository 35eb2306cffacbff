import { stringify } from 'yaml';

/** No line folding: nginx.conf and scripts must stay readable and diffable as literal blocks. */
export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}
