// Types of the SIP message layer.

/** A generic parameter (`;name=value` or `;name`). Value kept raw (quotes and escapes included); null = no value. */
export interface Param {
  name: string;
  value: string | null;
}

/** sip: / sips: URI (RFC 3261 §19.1). All components are kept raw (escapes not decoded). */
export interface SipUri {
  kind: 'sip';
  scheme: 'sip' | 'sips';
  user: string | null;
  password: string | null;
  /** Host as written; IPv6 references keep their brackets. */
  host: string;
  hostType: 'name' | 'ipv4' | 'ipv6';
  port: number | null;
  params: Param[];
  /** `?name=value&...` headers, raw. */
  headers: Param[];
  raw: string;
}

/** tel: URI (RFC 3966), number and params kept raw. */
export interface TelUri {
  kind: 'tel';
  scheme: 'tel';
  number: string;
  params: Param[];
  raw: string;
}

/** Any other absoluteURI; `scheme` is lower-cased, `opaque` is everything after the colon. */
export interface OtherUri {
  kind: 'other';
  scheme: string;
  opaque: string;
  raw: string;
}

export type Uri = SipUri | TelUri | OtherUri;

/** name-addr / addr-spec with header parameters (From, To, Contact, Route, ...). */
export interface NameAddr {
  /** Display name decoded (quotes removed, quoted-pairs resolved); null when absent. */
  displayName: string | null;
  /** Display name exactly as written (quotes included); null when absent. */
  displayNameRaw: string | null;
  /** True when the URI was enclosed in `<...>`. */
  angle: boolean;
  uri: Uri;
  /** Header parameters (after the URI / `>`), in order. */
  params: Param[];
  /** Convenience: value of the `tag` parameter, if any. */
  tag: string | null;
}

export interface Via {
  protocol: string;
  version: string;
  /** Transport upper-cased (UDP, TCP, TLS, SCTP, WS, WSS, or an unknown token). */
  transport: string;
  /** sent-by host; IPv6 references keep their brackets. */
  host: string;
  port: number | null;
  params: Param[];
  branch: string | null;
  received: string | null;
  /** undefined: absent; true: present without value; number: with value. */
  rport: number | true | undefined;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** One header line as received: name as written, value with folding replaced by SP and outer SP/HTAB trimmed. */
export interface SipHeader {
  name: string;
  value: string;
}

/** Parsed snapshot of the core headers, taken at parse time (the `headers` array stays the source of truth). */
export interface CoreHeaders {
  via: Via[];
  from: NameAddr | null;
  to: NameAddr | null;
  callId: string | null;
  cseq: CSeq | null;
  maxForwards: number | null;
  contentLength: number | null;
  /** Contact values (empty when absent); `contactStar` is true for `Contact: *`. */
  contact: NameAddr[];
  contactStar: boolean;
  route: NameAddr[];
  recordRoute: NameAddr[];
}

interface SipMessageBase {
  /** "SIP/2.0" as written. */
  version: string;
  headers: SipHeader[];
  body: Buffer;
  /** Parsed core headers; absent on messages built by hand. */
  core?: CoreHeaders;
}

export interface SipRequest extends SipMessageBase {
  type: 'request';
  method: string;
  /** Request-URI as written. */
  uri: string;
  /** Parsed Request-URI (absent on messages built by hand). */
  ruri?: Uri;
}

export interface SipResponse extends SipMessageBase {
  type: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

export type ParseResult =
  | { ok: true; msg: SipMessage }
  | {
      ok: false;
      /** Status to answer with (400, 505, ...); meaningless when `drop` is set. */
      status: number;
      reason: string;
      /** True for malformed responses (and garbage): discard silently, never answer. */
      drop?: boolean;
      /** Rejected request whose start line and header lines could be split (for a best-effort error response). */
      partial?: SipRequest;
    };

export interface ParseOptions {
  /**
   * Stream transport semantics: the buffer holds exactly one framed message
   * (see SipStreamFramer); Content-Length is mandatory. Default false (datagram).
   */
  stream?: boolean;
  /** Most header fields accepted in one message (default 256); more are refused with 400. */
  maxHeaders?: number;
}
