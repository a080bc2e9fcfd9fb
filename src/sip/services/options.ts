/**
 * OPTIONS (capabilities) and the API carried in SIP: an OPTIONS or MESSAGE with an X-MVAPI header (or its body) is
 * one API request line, answered by the injected handler (the composition root adapts it to the API gateway).
 */
import { getHeader, type SipHeader, type SipRequest } from '../message/index.js';
import type { ServerTransaction, SipSource } from '../stack.js';
import type { SipContext } from './context.js';
import { PIDF } from './presence.js';

/** Answers one API request line carried in SIP, from the SIP source it came from. */
export type SipApiHandler = (text: string, from: SipSource) => Promise<string>;

export class OptionsService {
  constructor(
    private readonly ctx: SipContext,
    /** the methods the server answers (Allow) */
    private readonly allowed: () => string[],
    private readonly apiHandler?: SipApiHandler,
  ) {}

  capabilityHeaders(): SipHeader[] {
    return [
      { name: 'Allow', value: this.allowed().join(', ') },
      { name: 'Accept', value: ['application/sdp', PIDF, 'text/plain'].join(', ') },
      { name: 'Accept-Encoding', value: 'identity' },
      { name: 'Supported', value: '' },
      { name: 'Allow-Events', value: 'presence' },
    ].filter((h) => h.value !== '');
  }

  async onOptions(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    if (getHeader(req, 'X-MVAPI') !== undefined) return this.onApi(req, tx, src);
    this.ctx.respond(tx, req, 200, 'OK', this.capabilityHeaders());
  }

  async onApi(req: SipRequest, tx: ServerTransaction, src: SipSource): Promise<void> {
    const line = getHeader(req, 'X-MVAPI') ?? '';
    if (!this.ctx.o.sipapi || !this.apiHandler)
      return this.ctx.respond(tx, req, 403, 'API over SIP is disabled (sipapi=false)');
    const text = line.trim() || req.body.toString('utf8').trim();
    const answer = await this.apiHandler(text, src);
    this.ctx.respond(tx, req, 200, 'OK', [], { type: 'text/plain; charset=utf-8', data: Buffer.from(answer, 'utf8') });
  }
}
