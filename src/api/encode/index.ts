/**
 * Response encoders: one per format (text, cleartext, html, xml, soap, json, jsonp) from a plain ApiResult.
 * Shapes, with examples, are documented in docs/api.md.
 */
import type { ApiResult, Format } from '../types.js';

export interface Encoded {
  /** HTTP status (transports without one ignore it). */
  status: number;
  contentType: string;
  body: string;
}

export interface EncodeOptions {
  format: Format;
  callback?: string;
  legacy?: boolean;
  /** httpstrictresponse: the HTTP status carries the API code. */
  strict: boolean;
}

const cell = (v: unknown): string =>
  v === null || v === undefined
    ? ''
    : v instanceof Date
      ? v.toISOString()
      : typeof v === 'object'
        ? JSON.stringify(v)
        : String(v);

function columnsOf(r: ApiResult): string[] {
  if (r.columns) return r.columns;
  const seen = new Set<string>();
  for (const row of r.rows ?? []) for (const k of Object.keys(row)) seen.add(k);
  return [...seen];
}

/**
 * The plain-text body (without the OK/ERROR line): the text, then rows as TSV with a header (fields are in the text).
 */
function plainText(r: ApiResult): string {
  const parts: string[] = [];
  if (r.text) parts.push(r.text);
  if (r.rows) {
    const cols = columnsOf(r);
    const clean = (v: unknown) => cell(v).replace(/[\t\r\n]+/g, ' ');
    parts.push([cols.join('\t'), ...r.rows.map((row) => cols.map((c) => clean(row[c])).join('\t'))].join('\r\n'));
  }
  return parts.join('\r\n');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function xmlText(s: string): string {
  // characters XML 1.0 cannot carry are dropped
  return escapeHtml(s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, ''));
}

/** A safe XML element name for a column/field name. */
export function xmlName(n: string): string {
  let s = n.replace(/[^A-Za-z0-9_.-]/g, '_');
  if (!/^[A-Za-z_]/.test(s) || /^xml/i.test(s)) s = '_' + s;
  return s;
}

function xmlInner(r: ApiResult): string {
  let out = `<code>${r.code}</code><status>${r.ok ? 'OK' : 'ERROR'}</status><text>${xmlText(r.text)}</text>`;
  if (r.fields)
    out += `<fields>${Object.entries(r.fields)
      .map(([k, v]) => `<${xmlName(k)}>${xmlText(cell(v))}</${xmlName(k)}>`)
      .join('')}</fields>`;
  if (r.rows) {
    const cols = columnsOf(r);
    out += `<rows count="${r.rows.length}">`;
    for (const row of r.rows)
      out += `<row>${cols.map((c) => `<${xmlName(c)}>${xmlText(cell(row[c]))}</${xmlName(c)}>`).join('')}</row>`;
    out += '</rows>';
  }
  return out;
}

export function jsonValue(r: ApiResult): Record<string, unknown> {
  const o: Record<string, unknown> = { code: r.code, status: r.ok ? 'OK' : 'ERROR', text: r.text };
  if (r.fields) o.fields = r.fields;
  if (r.rows) {
    o.columns = columnsOf(r);
    o.rows = r.rows.map((row) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v])),
    );
  }
  return o;
}

function html(r: ApiResult): string {
  let body = `<p class="text">${escapeHtml(r.text).replace(/\r?\n/g, '<br>')}</p>`;
  if (r.fields)
    body += `<table class="fields">${Object.entries(r.fields)
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(cell(v))}</td></tr>`)
      .join('')}</table>`;
  if (r.rows) {
    const cols = columnsOf(r);
    const head = cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
    body += `<table class="rows"><thead><tr>${head}</tr></thead><tbody>`;
    body += r.rows
      .map((row) => `<tr>${cols.map((c) => `<td>${escapeHtml(cell(row[c]))}</td>`).join('')}</tr>`)
      .join('');
    body += '</tbody></table>';
  }
  body += `<p class="status" data-code="${r.code}">${r.ok ? 'OK' : 'ERROR'}</p>`;
  return (
    `<!DOCTYPE html><html><head><meta charset="utf-8"><title>voxswitch ` +
    `API</title></head><body>${body}</body></html>`
  );
}

export function encode(r: ApiResult, o: EncodeOptions): Encoded {
  const status = o.strict ? r.code : 200;
  if (o.legacy) {
    const t = plainText(r);
    return {
      status: o.strict ? (r.ok ? 200 : (r.legacyStatus ?? 412)) : 200,
      contentType: 'text/plain; charset=utf-8',
      body: r.ok ? (t ? `OK:${t}` : 'OK') : `ERROR:${t}`,
    };
  }
  if (r.oneLine && (o.format === 'text' || o.format === 'cleartext')) {
    const line = r.text.replace(/[\r\n]+/g, ' ');
    return {
      status,
      contentType: 'text/plain; charset=utf-8',
      body: o.format === 'cleartext' ? line : `${r.ok ? 'OK' : 'ERROR'}: ${line}`,
    };
  }
  switch (o.format) {
    case 'cleartext':
      return { status, contentType: 'text/plain; charset=utf-8', body: plainText(r) };
    case 'html':
      return { status, contentType: 'text/html; charset=utf-8', body: html(r) };
    case 'xml':
      return {
        status,
        contentType: 'application/xml; charset=utf-8',
        body: `<?xml version="1.0" encoding="UTF-8"?><response>${xmlInner(r)}</response>`,
      };
    case 'soap':
      return {
        status,
        contentType: 'text/xml; charset=utf-8',
        body:
          `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope ` +
          `xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
          `<mvapiresponse>${xmlInner(r)}</mvapiresponse></soap:Body></soap:Envelope>`,
      };
    case 'json':
      return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(jsonValue(r)) };
    case 'jsonp':
      return {
        status,
        contentType: 'application/javascript; charset=utf-8',
        body: `/**/${o.callback ?? 'callback'}(${JSON.stringify(jsonValue(r))});`,
      };
    case 'text':
    default: {
      const t = plainText(r);
      return {
        status,
        contentType: 'text/plain; charset=utf-8',
        body: t ? `${t}\r\n${r.ok ? 'OK' : 'ERROR'}` : r.ok ? 'OK' : 'ERROR',
      };
    }
  }
}
