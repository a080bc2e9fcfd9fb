// Public API of the SIP message layer.
export type * from './types.js';
export { parseMessage, MAX_HEADERS } from './parser.js';
export {
  serialize,
  createResponse,
  buildResponse,
  reasonPhrase,
  REASON_PHRASES,
  generateTag,
  generateBranch,
  generateCallId,
  setCallIdMarker,
  callIdMarkerOf,
  SipSerializeError,
} from './serializer.js';
export type { ResponseOptions } from './serializer.js';
export {
  parseUri,
  formatUri,
  sipUriEquals,
  unescapeUriComponent,
  isIPv4,
  isIPv6,
  isHostname,
  hostType,
  parsePort,
} from './uri.js';
export { parseNameAddr, parseNameAddrList, parseNameAddrAt, formatNameAddr } from './nameaddr.js';
export type { NameAddrOptions } from './nameaddr.js';
export { parseVia, formatVia } from './via.js';
export { parseParams, getParam, hasParam, formatParams, quote, unquote } from './params.js';
export {
  COMPACT_FORMS,
  headerKey,
  canonicalName,
  nameIs,
  getHeader,
  getHeaders,
  getHeaderValues,
  countHeaders,
  hasHeader,
  addHeader,
  setHeader,
  removeHeaders,
  isListHeader,
  splitHeaderValue,
  parseCSeq,
  parseContentLength,
  parseMaxForwards,
  parseDeltaSeconds,
  isValidCallId,
  parseTokenList,
  mediaType,
} from './headers.js';
export { frameMessage, SipStreamFramer, DEFAULT_MAX_MESSAGE_SIZE } from './framer.js';
export type { FrameResult, FramerEvent, FramerOptions } from './framer.js';
export { validateRequest, validateResponse, isUnsafeDestination, aorKey, DEFAULT_METHODS } from './validate.js';
export type { Role, ValidateOptions, Rejection, ResponseCheck } from './validate.js';
export { escapeUser, uriHostPart, sipUri, uriUser, uriHost, quoteDisplay } from './sipuri.js';
export { ownString } from './ownstring.js';
