/**
 * The closed set of failures the operator knows. The tag is both the `err` log field and the
 * `reason` label of socketfleet_operator_reconcile_errors_total, so dashboards and alerts can
 * rely on it never growing by accident.
 */
export const ERROR_TAGS = [
  'InvalidSpec',
  'BuildFailed',
  'ApiConflict',
  'ApiForbidden',
  'ApiInvalid',
  'ApiNotFound',
  'ApiTransient',
  'LeaderLost',
  'NamespaceTerminating',
  'Internal',
] as const;

export type ErrorTag = (typeof ERROR_TAGS)[number];

/** Terminal errors cannot be fixed by retrying; only a new spec (a new watch event) can. */
const TERMINAL: ReadonlySet<ErrorTag> = new Set<ErrorTag>(['InvalidSpec', 'BuildFailed']);

export class OperatorError extends Error {
  readonly tag: ErrorTag;
  readonly httpStatus: number | undefined;

  constructor(tag: ErrorTag, message: string, opts: { httpStatus?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OperatorError';
    this.tag = tag;
    this.httpStatus = opts.httpStatus;
  }

  get terminal(): boolean {
    return TERMINAL.has(this.tag);
  }
}

export function isTerminal(tag: ErrorTag): boolean {
  return TERMINAL.has(tag);
}

/**
 * Maps an API server response code to the tag of the failure it stands for. `causes` are the
 * reasons in the Status object's details: a create refused because its namespace is being deleted
 * is a 403 like a missing permission, but no retry and no fix is wanted, only the cluster's own
 * deletion, which the namespace's deletion brings.
 */
export function tagForHttpStatus(status: number, causes: readonly string[] = []): ErrorTag {
  if (status === 403 && causes.includes('NamespaceTerminating')) return 'NamespaceTerminating';
  if (status === 409) return 'ApiConflict';
  if (status === 401 || status === 403) return 'ApiForbidden';
  if (status === 404) return 'ApiNotFound';
  if (status === 400 || status === 422) return 'ApiInvalid';
  if (status === 429 || status >= 500) return 'ApiTransient';
  return 'Internal';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
]);

/** Normalises anything thrown during a reconcile into an OperatorError. */
export function toOperatorError(err: unknown): OperatorError {
  if (err instanceof OperatorError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new OperatorError('ApiTransient', `API server unreachable: ${message}`, { cause: err });
  }
  return new OperatorError('Internal', message, { cause: err });
}
