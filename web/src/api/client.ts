// The HTTP client: every call carries the bearer token, errors become
// ApiError with the server's code, message and position, and a 401 signs the
// user out wherever it happens.

const TOKEN_KEY = 'kubetrail.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly where?: string;

  constructor(status: number, code: string, message: string, where?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.where = where;
  }

  /** The 1-based byte column of a filter error ("filter column 12"). */
  get column(): number | undefined {
    const m = /(?:^|\s)column (\d+)$/.exec(this.where ?? '');
    return m ? Number(m[1]) : undefined;
  }
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

type Unauthorized = () => void;
let onUnauthorizedHandler: Unauthorized = () => {};

/** Registers what to do when the server refuses the token (show the login). */
export function onUnauthorized(fn: Unauthorized): void {
  onUnauthorizedHandler = fn;
}

export type Params = Record<string, string | number | undefined | null>;

export function queryString(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** GET /api/v1{path}; token defaults to the signed-in one. */
export async function apiGet<T>(
  path: string,
  params: Params = {},
  signal?: AbortSignal,
  token: string | null = getToken(),
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}${queryString(params)}`, {
      headers: { Authorization: `Bearer ${token ?? ''}`, Accept: 'application/json' },
      signal,
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(0, 'network', 'Cannot reach the kubetrail server.');
  }
  if (res.ok) return (await res.json()) as T;

  let code = 'internal';
  let message = `${res.status} ${res.statusText}`;
  let where: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; where?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
    where = body.error?.where;
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  if (res.status === 401) {
    code = 'unauthorized';
    onUnauthorizedHandler();
  }
  throw new ApiError(res.status, code, message, where);
}
