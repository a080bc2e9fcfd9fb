/** The options of the SIP stack, its calls and the RTP relay, by their names (merged into optionSchemas). */
import { z } from 'zod';
import { bool, int, str } from './kinds.js';

export const sipOptions = {
  usesip: { schema: bool, def: 'true', doc: 'run the SIP stack' },
  sipshowversion: {
    schema: bool,
    def: 'false',
    doc: 'Server and User-Agent headers name the exact version (voxswitch/X.Y.Z); off: only "voxswitch"',
  },
  sipport: { schema: int(0, 65535), def: '5060', doc: 'SIP port for UDP and TCP' },
  siptlsport: { schema: int(0, 65535), def: '5061', doc: 'SIP over TLS port (used when usetls is on)' },
  sipwsport: {
    schema: int(0, 65535),
    def: '0',
    doc:
      'SIP over WebSocket port (RFC 7118): plain WebSocket, or secure WebSocket instead when usetls is on; ' +
      '0 disables',
  },
  sipbindaddr: { schema: str, def: '0.0.0.0', doc: 'address the SIP listeners bind to' },
  sipdomain: { schema: str, def: '', doc: 'SIP domain/realm (empty: the address the request was sent to)' },
  sipmaxmessage: { schema: int(1024, 1_048_576), def: '65535', doc: 'largest SIP message in bytes' },
  sipmaxconnections: { schema: int(1, 1_000_000), def: '10000', doc: 'most open SIP TCP/TLS/WS connections' },
  sipmaxconnperip: { schema: int(1, 1_000_000), def: '100', doc: 'most SIP TCP/TLS/WS connections from one address' },
  sipminexpires: { schema: int(1, 86400), def: '60', doc: 'Min-Expires for REGISTER and SUBSCRIBE' },
  sipmaxexpires: { schema: int(60, 86400 * 7), def: '3600', doc: 'longest registration/subscription granted' },
  sipnoncettl: { schema: int(5, 3600), def: '300', doc: 'seconds a digest nonce is valid' },
  sipdigest: {
    schema: str.transform((v, ctx) => {
      const list = v
        .split(/[\s,]+/)
        .filter(Boolean)
        .map((a) => a.toUpperCase());
      if (!list.length || list.some((a) => a !== 'MD5' && a !== 'SHA-256')) {
        ctx.addIssue({ code: 'custom', message: `expected MD5 and/or SHA-256 (comma separated), got "${v}"` });
        return z.NEVER;
      }
      return list as Array<'MD5' | 'SHA-256'>;
    }),
    def: 'MD5',
    doc: 'digest algorithms offered in challenges, in order (SHA-256 answers are always accepted)',
  },
  sessionexpires: {
    schema: int(0, 86400),
    def: '1800',
    doc:
      'RFC 4028 session interval (s) offered to and granted on each call leg; a leg not refreshed in time ends ' +
      'the call (0: no session timers)',
  },
  minse: {
    schema: int(1, 86400),
    def: '90',
    doc: 'RFC 4028 Min-SE (s): smaller Session-Expires get 422 (RFC minimum 90; smaller values for tests only)',
  },
  allowtransfer: {
    schema: bool,
    def: 'true',
    doc:
      'call transfer by REFER (blind, and attended with Replaces) from a registered phone inside a call; false: ' +
      'every REFER is answered 403',
  },
  sipapi: { schema: bool, def: 'false', doc: 'answer API requests carried in SIP (X-MVAPI header in MESSAGE/OPTIONS)' },
  pinless: {
    schema: z.enum(['off', 'gateways']),
    def: 'gateways',
    doc:
      'pin-less calling: a call from a gateway inbound_ip whose caller number is a CLI of an account (cli) is ' +
      'placed and billed as that account (gateways), or never (off)',
  },
  rtprelay: {
    schema: z.enum(['off', 'nat', 'always']),
    def: 'nat',
    doc: 'RTP relay: off (media end to end), nat (relay when a party is behind NAT), always',
  },
  rtpportmin: { schema: int(1024, 65534), def: '20000', doc: 'lowest UDP port of the RTP relay' },
  rtpportmax: { schema: int(1025, 65535), def: '30000', doc: 'highest UDP port of the RTP relay' },
  rtpaddress: { schema: str, def: '', doc: 'address the RTP relay writes into SDP (empty: the SIP local address)' },
  rtptimeout: {
    schema: int(0, 86400),
    def: '60',
    doc: 'seconds without RTP from a sending party before a relayed call is ended (0: never)',
  },
} as const;
