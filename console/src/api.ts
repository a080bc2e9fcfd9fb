/** The console's calls to /console/api: JSON in and out, the session's CSRF token on every POST. */
export interface Me {
  user: { username: string; type: string; rank: number };
  csrf: string;
  server: {
    version: string;
    host: string;
    tls: number;
    jsonp: number;
    keyRequired: boolean;
    authkey?: string;
    md5salt?: string;
  };
}

export interface ApiResult {
  ok: boolean;
  code: number;
  text: string;
  fields?: Record<string, string | number>;
  columns?: string[];
  rows?: Array<Record<string, unknown>>;
}

export interface Command {
  name: string;
  aliases?: string[];
  params: string[];
  description: string;
  level: number;
  reqUser: number;
  available: boolean;
  unavailable?: string;
}

let csrf = '';
export function setCsrf(token: string): void {
  csrf = token;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function call<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers = { 'content-type': 'application/json', 'x-csrf-token': csrf };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/console/api/${path}`, init);
  const data = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new HttpError(res.status, data.error ?? `HTTP ${res.status}`);
  return data as T;
}

/** Runs one API command as the logged-in user. */
export async function run(
  command: string,
  params: Record<string, string> = {},
  format = 'json',
): Promise<{ result: ApiResult; encoded: { status: number; type: string; body: string } }> {
  return call('run', { command, params, format });
}

export interface ImportProgress {
  phase: 'check' | 'write';
  done: number;
  total: number;
}
export interface ImportResult {
  ok: boolean;
  imported: number;
  replaced?: number;
  plan: string;
  errors: Array<{ line: number; reason: string }>;
}

/** Imports a tariff CSV; the server streams NDJSON progress lines, then the result. */
export async function importTariffs(
  body: { csv: string; plan: string; replace: boolean },
  onProgress: (p: ImportProgress) => void,
): Promise<ImportResult> {
  const res = await fetch('/console/api/tariffs/import', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) {
    const data = (await res.json().catch(() => ({}))) as { error?: string };
    throw new HttpError(res.status, data.error ?? `HTTP ${res.status}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += value;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl)) as { progress?: ImportProgress; result?: ImportResult };
      buf = buf.slice(nl + 1);
      if (msg.progress) onProgress(msg.progress);
      if (msg.result) return msg.result;
    }
    if (done) throw new Error('the import answer ended without a result');
  }
}
