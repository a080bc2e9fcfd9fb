/**
 * Request bodies and bare request lines in every format the document lists: URL/query form, JSON, XML and
 * SOAP, ini (key=value lines), multipart form, and plain text (positional: function key user password params).
 */
import { XMLParser } from 'fast-xml-parser';
import type { Format } from '../types.js';
import { DecodeError, parseQuery } from './params.js';

export interface Decoded {
  params: Record<string, string>;
  guessed: Format;
  pathEntry?: string;
  tokens?: string[];
  legacy?: boolean;
  jppget?: string;
}

const xml = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
});

function scalar(v: unknown): string | undefined {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null))
    return v.map((x) => String(x ?? '')).join(',');
  return undefined;
}

/** Flat params from an object: scalars at the top, plus one nested object level (e.g. {"params": {...}}). */
function flatten(obj: Record<string, unknown>, out: Record<string, string> = {}, depth = 0): Record<string, string> {
  for (const [k, v] of Object.entries(obj)) {
    const s = scalar(v);
    if (s !== undefined) {
      const key = k.trim().toLowerCase();
      if (key && !(key in out)) out[key] = s;
    } else if (depth < 2 && v && typeof v === 'object' && !Array.isArray(v)) {
      flatten(v as Record<string, unknown>, out, depth + 1);
    }
  }
  return out;
}

export function decodeJson(text: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`malformed JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DecodeError('JSON request must be an object');
  return { params: flatten(v as Record<string, unknown>), guessed: 'json' };
}

export function decodeXml(text: string): Decoded {
  let doc: Record<string, unknown>;
  try {
    doc = xml.parse(text, true) as Record<string, unknown>;
  } catch (e) {
    throw new DecodeError(`malformed XML: ${(e as Error).message}`);
  }
  delete doc['?xml'];
  const rootName = Object.keys(doc)[0];
  if (!rootName) throw new DecodeError('empty XML request');
  let root = doc[rootName];
  let guessed: Format = 'xml';
  let pathEntry: string | undefined;
  if (rootName.toLowerCase() === 'envelope' && root && typeof root === 'object') {
    guessed = 'soap';
    const body = (root as Record<string, unknown>).Body ?? (root as Record<string, unknown>).body;
    if (!body || typeof body !== 'object') throw new DecodeError('SOAP request without a Body');
    const op = Object.keys(body)[0];
    if (!op) throw new DecodeError('SOAP Body is empty');
    root = (body as Record<string, unknown>)[op];
    // <Body><balance><authid>…</authid></balance></Body>: the operation element names the API
    if (op.toLowerCase() !== 'mvapireq' && op.toLowerCase() !== 'request') pathEntry = op;
  } else if (!['mvapireq', 'request', 'api', 'apirequest'].includes(rootName.toLowerCase())) {
    pathEntry = rootName;
  }
  if (root === '' || root === undefined || root === null) root = {};
  if (typeof root !== 'object') throw new DecodeError('XML request: expected parameter elements under the root');
  return { params: flatten(root as Record<string, unknown>), guessed, pathEntry };
}

/** ini: one key=value per line (# and ; comments, [sections] ignored). */
export function decodeIni(text: string): Decoded {
  const params: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';') || t.startsWith('[')) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new DecodeError(`ini request: expected key=value, got "${t.slice(0, 40)}"`);
    const k = t.slice(0, eq).trim().toLowerCase();
    if (!(k in params)) params[k] = t.slice(eq + 1).trim();
  }
  return { params, guessed: 'text' };
}

/** Splits plain text into tokens on whitespace; "double quotes" keep spaces in a value. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new DecodeError('unterminated quote in request');
      out.push(line.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < line.length && !/\s/.test(line[j]!)) j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

/** A URL path and query: /mvapireq/…, /xmapi/COMMAND?…, jppget?url=…, or a bare query string. */
export function decodeTarget(target: string): Decoded {
  const qpos = target.indexOf('?');
  const path = qpos < 0 ? target : target.slice(0, qpos);
  const query = qpos < 0 ? '' : target.slice(qpos + 1);
  const lower = path.toLowerCase();
  const xm = lower.indexOf('xmapi/');
  if (xm >= 0) {
    // old API: parameters are not URL-encoded, "now" is appended
    const params = parseQuery(query, {}, false);
    return {
      params,
      guessed: 'text',
      legacy: true,
      pathEntry: decodeURIComponentSafe(path.slice(xm + 6)).replace(/\/+$/, ''),
    };
  }
  const at = lower.indexOf('mvapireq');
  let rest = at >= 0 ? path.slice(at + 8) : path;
  rest = rest.replace(/^\/+|\/+$/g, '');
  const params = parseQuery(query);
  const seg = rest.split('/').filter(Boolean).pop();
  if (seg && seg.toLowerCase() === 'jppget') return { params, guessed: 'jsonp', jppget: params.url ?? '' };
  const pathEntry = seg && seg.toLowerCase() !== 'mvstwebsock' && /^[A-Za-z0-9_.-]+$/.test(seg) ? seg : undefined;
  return { params, guessed: 'text', pathEntry };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A URL line: `/mvapireq/?…` or `http://host/mvapireq/?…` (or `xmapi/`), optionally as typed into telnet,
 * `GET /mvapireq/?… HTTP/1.1`. Values may hold raw spaces (the old API does not URL-encode them).
 */
const URL_LINE = /^(?:[A-Z]{3,10} (?=\/))?((?:[a-z]+:\/\/[^/\s]*)?\S*?(?:mvapireq|xmapi\/).*?)(?: HTTP\/1\.[01])?$/i;

/**
 * One request as sent over TCP, UDP, WebSocket or as a plain-text body: a URI, a query string, JSON, XML,
 * ini lines, or positional plain text.
 */
export function decodeText(text: string): Decoded {
  const t = text.trim();
  if (!t) return { params: {}, guessed: 'text' };
  const c = t[0];
  if (c === '{') return decodeJson(t);
  if (c === '<') return decodeXml(t);
  const firstLine = t.split(/\r?\n/, 1)[0]!;
  const url = URL_LINE.exec(firstLine.trim());
  if (url) return decodeTarget(url[1]!.replace(/^[a-z]+:\/\/[^/]*/i, ''));
  if (t.includes('\n') && /^[^\s=&]+=/.test(t)) return decodeIni(t);
  if (/^[?]?[^\s=&]+=[^\s]*$/.test(firstLine) && !t.includes('\n')) return { params: parseQuery(t), guessed: 'text' };
  if (/^[^\s=&]+=/.test(t) && !t.includes('&')) return decodeIni(t);
  return { params: {}, guessed: 'text', tokens: tokenize(t) };
}

/** A POST body by its Content-Type (sniffed when missing or generic). */
export async function decodeBody(body: Buffer, contentType: string): Promise<Decoded> {
  const ct = contentType.toLowerCase();
  if (ct.startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    } catch (e) {
      throw new DecodeError(`malformed multipart form: ${(e as Error).message}`);
    }
    const params: Record<string, string> = {};
    for (const [k, v] of form.entries()) {
      const key = k.toLowerCase();
      if (key in params) continue;
      params[key] = typeof v === 'string' ? v : Buffer.from(await v.arrayBuffer()).toString('base64');
    }
    return { params, guessed: 'html' };
  }
  const text = body.toString('utf8');
  if (text.includes('\u0000')) throw new DecodeError('binary data is not a valid request');
  if (ct.startsWith('application/x-www-form-urlencoded')) return { params: parseQuery(text.trim()), guessed: 'html' };
  if (ct.includes('json')) return decodeJson(text);
  if (ct.includes('xml') || ct.includes('soap')) return decodeXml(text);
  return decodeText(text);
}
