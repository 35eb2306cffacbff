/** Kubernetes MicroTime (RFC 3339 with exactly six fractional digits), used by Leases and Events. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Kubernetes Time (RFC 3339, whole seconds), used by condition lastTransitionTime. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
