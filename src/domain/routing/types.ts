/** The routing contract: what a call asks (RouteRequest) and what routing decides (RouteDecision), and gateways. */
import type { User } from '../accounts/users.js';
import type { Rate, Quote } from '../rating/service.js';

export type GatewayTransport = 'udp' | 'tcp' | 'tls';

/**
 * How a gateway's host is resolved (RFC 3263 §4): '' the host is an IP, or a name with a port given (A/AAAA only);
 * 'srv' a name without a port but with a transport (SRV of that transport, then A/AAAA); 'naptr' a name with neither
 * (NAPTR picks the transport, then SRV, then A/AAAA with the default transport and port).
 */
export type GatewayDns = '' | 'srv' | 'naptr';
export const GATEWAY_TRANSPORTS: readonly GatewayTransport[] = ['udp', 'tcp', 'tls'];

export interface RouteRequest {
  /** Caller number/username as presented (From user part). */
  caller: string;
  /** Dialled number / username (Request-URI user part). */
  called: string;
  /** Source IP of the request (used to recognise a gateway's inbound_ip). */
  fromIp: string;
  /** The authenticated caller (absent for calls from a trusted gateway). */
  user?: User;
  /**
   * Optional: credit (micro-units) already reserved by the caller's other live calls; subtracted from the balance
   * before the first-block check. Omitted = 0.
   */
  reservedCredit?: number;
}

export interface GatewayCandidate {
  id: number;
  name: string;
  host: string;
  port: number;
  transport: GatewayTransport;
  username: string;
  /** Clear password (decrypted); '' when none. Never log it. */
  password: string;
  /** The number to send to this gateway (after strip/addprefix). */
  number: string;
  /** RFC 3263 look-ups of the host ('' or absent: A/AAAA of a name, an IP as is). */
  dns?: GatewayDns;
}

export type RouteDecision =
  | { kind: 'user'; user: User; number: string; forward?: { always?: string; busy?: string; noanswer?: string } }
  | {
      kind: 'gateways';
      /** The normalised called number (E.164 digits, no '+'). */
      number: string;
      rate: Rate;
      quote: Quote;
      /** Failover order: try candidates[0] first. */
      candidates: GatewayCandidate[];
      /** Longest affordable call in seconds from balance − reservedCredit (informative; the B2BUA reserves). */
      maxDuration?: number;
      /** The balance seen (micro-units) and its currency (informative). */
      credit?: number;
      currency?: string;
    }
  | { kind: 'reject'; status: number; reason: string };

/** A row of tb_gateways as the routing layer sees it (password still encrypted). */
export interface Gateway {
  id: number;
  name: string;
  host: string;
  port: number;
  transport: GatewayTransport;
  username: string;
  passwordEnc: string;
  prefix: string;
  strip: number;
  addprefix: string;
  priority: number;
  weight: number;
  /** As stored: '' or one or more addresses separated by commas/spaces. */
  inboundIp: string;
  enabled: boolean;
  createdAt: number;
  dns: GatewayDns;
  /** Trunk registration (see TrunkRegistration). */
  registration: TrunkRegistration;
}

/** How a gateway registers itself at its host (RFC 3261 §10 client side); `register` false: it does not. */
export interface TrunkRegistration {
  register: boolean;
  /** Expires asked for, in seconds. */
  expires: number;
  /** The address-of-record user ('' = the gateway's username). */
  user: string;
  /** The digest user name ('' = user, else username). */
  authUser: string;
  /** The digest realm the credentials may answer ('' = any). */
  realm: string;
  /** The Contact user ('' = the AOR user): INVITEs to it are the trunk's inbound calls. */
  contact: string;
}

/** A registering gateway with everything its REGISTER needs (the password decrypted). */
export interface TrunkConfig {
  id: number;
  name: string;
  host: string;
  port: number;
  transport: GatewayTransport;
  /** RFC 3263 look-ups of a host name (see GatewayDns). */
  dns: GatewayDns;
  /** The address-of-record user. */
  aor: string;
  authUser: string;
  password: string;
  realm: string;
  contact: string;
  expires: number;
}

/** What addgateway takes (already validated by validateGatewayInput). */
export interface NewGateway {
  name: string;
  host: string;
  port: number;
  transport: GatewayTransport;
  username: string;
  password: string;
  prefix: string;
  strip: number;
  addprefix: string;
  priority: number;
  weight: number;
  inboundIp: string;
  enabled: boolean;
  dns: GatewayDns;
  registration: TrunkRegistration;
}
