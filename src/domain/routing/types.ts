/** The routing contract: what a call asks (RouteRequest) and what routing decides (RouteDecision), and gateways. */
import type { User } from '../accounts/users.js';
import type { Rate, Quote } from '../rating/service.js';

export type GatewayTransport = 'udp' | 'tcp' | 'tls';
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
}
