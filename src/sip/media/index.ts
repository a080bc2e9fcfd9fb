/** RTP relay (optional, option rtprelay): port pool, relay sessions with NAT latching, RTP timeout, SDP rewriting. */
export { CallMedia, isPrivateAddress, behindNat, uriHost, localMediaAddress, type CalleeHint } from './calls.js';
export { RtpRelay, RelaySession, type RelayOptions, type Side, type RtpTap } from './relay.js';
export { PortPool, PortsExhaustedError } from './ports.js';
export { parseSdp, rewriteSdp, looksLikeSdp, type SdpStream } from './sdp.js';
