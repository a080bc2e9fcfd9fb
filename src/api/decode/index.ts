/** Entry points of request decoding: an HTTP request, or one message from TCP/UDP/WebSocket. */
import type { ApiRequest, Source } from '../types.js';
import { decodeBody, decodeTarget, decodeText, type Decoded } from './body.js';
import { mapLegacy } from './legacy.js';
import { buildRequest, DecodeError } from './params.js';

export { DecodeError } from './params.js';

export interface DecodeOptions {
  encryptKey: string;
}

/** A decoded request, or the inner URL of a jppget (JSONP get) to resolve. */
export type DecodeResult =
  { kind: 'request'; req: ApiRequest } | { kind: 'jppget'; url: string; callback?: string; source: Source };

function finish(d: Decoded, source: Source, o: DecodeOptions): DecodeResult {
  if (d.jppget !== undefined) {
    const r = buildRequest(d.params, { source, guessed: 'jsonp', encryptKey: o.encryptKey });
    return { kind: 'jppget', url: d.jppget, callback: r.callback, source };
  }
  if (d.legacy) {
    const m = mapLegacy(d.pathEntry ?? '', d.params);
    if (!m) {
      const req = buildRequest({}, { source, guessed: 'text', encryptKey: o.encryptKey, legacy: true });
      req.entry = `xmapi:${(d.pathEntry ?? '').toLowerCase().slice(0, 32)}`;
      return { kind: 'request', req };
    }
    return {
      kind: 'request',
      req: buildRequest(m.params, {
        source,
        guessed: 'text',
        encryptKey: o.encryptKey,
        pathEntry: m.entry,
        legacy: true,
      }),
    };
  }
  return {
    kind: 'request',
    req: buildRequest(d.params, {
      source,
      guessed: d.guessed,
      encryptKey: o.encryptKey,
      pathEntry: d.pathEntry,
      tokens: d.tokens,
    }),
  };
}

export async function decodeHttp(
  method: string,
  target: string,
  contentType: string,
  body: Buffer,
  source: Source,
  o: DecodeOptions,
): Promise<DecodeResult> {
  const fromUrl = decodeTarget(target);
  if (method === 'POST' && body.length && !fromUrl.legacy) {
    const fromBody = await decodeBody(body, contentType);
    const params = { ...fromUrl.params, ...fromBody.params };
    return finish(
      { ...fromBody, params, pathEntry: fromBody.pathEntry ?? fromUrl.pathEntry, jppget: fromUrl.jppget },
      source,
      o,
    );
  }
  return finish(fromUrl, source, o);
}

/** One request as a text message (TCP line, UDP datagram, WebSocket message). */
export function decodeMessage(text: string, source: Source, o: DecodeOptions): DecodeResult {
  if (text.includes('\u0000')) throw new DecodeError('binary data is not a valid request');
  return finish(decodeText(text), source, o);
}
