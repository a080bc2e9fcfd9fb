/** The SIP part of the composition root: the stack, the SIP server and the trunk registrar from the options. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SipStack } from './sip/stack.js';
import type { HandoffOptions } from './sip/transport/handoff.js';
import { RelayDirectory } from './sip/services/relaydir.js';
import { SipServer, type SipApiHandler } from './sip/server.js';
import type { PhoneMessageHandler } from './sip/services/messaging.js';
import { nonGsmChars } from './domain/messaging/sms/encoding.js';
import { DomainError } from './domain/errors.js';
import { TrunkRegistrar } from './sip/trunks/registrar.js';
import type { Services } from './services.js';

/** The trunk registrar (gateways with register=1); its lease owner names this process (node, worker). */
export function buildTrunks(services: Services, sip: SipServer, worker: number): TrunkRegistrar {
  const o = services.config.options;
  const retry = (x: typeof o) => ({ retryMinMs: x.trunkretry * 1000, retryMaxMs: x.trunkretrymax * 1000 });
  const trunks = new TrunkRegistrar(
    {
      trunks: () => services.routing.trunks(),
      trust: (id, ips) => services.routing.trustAddresses(id, ips),
      stack: sip.stack,
      resolver: sip.resolver,
      log: services.log,
      leases: services.state.hash('trunks'),
      owner: `${services.state.nodeId}/${worker}`,
    },
    retry(o),
  );
  services.config.onChange((n) => Object.assign(trunks.o, retry(n)));
  return trunks;
}

/** The SIP stack and services from the sip* options (TLS and secure WebSocket when usetls is on). */
export function createSip(
  services: Services,
  dataDir: string,
  apiHandler: SipApiHandler,
  keys: { nonce: Buffer; relay: Buffer },
  shed: (continuation: boolean) => number,
  workers?: HandoffOptions,
): SipServer {
  const o = services.config.options;
  // between nodes (siprelayport): a directory over the bus, and the hand-off also in a single process
  const st = services.state;
  let relay: { directory: RelayDirectory; port: number } | undefined;
  if (o.siprelayport > 0) {
    if (st.kind !== 'redis') throw new Error('siprelayport needs redisurl: the nodes find each other over Redis');
    relay = { directory: new RelayDirectory(st.bus, st.nodeId, services.log), port: o.siprelayport };
  }
  const dir = relay?.directory;
  const relayOpts = dir && {
    node: st.nodeId,
    key: keys.relay,
    bindAddr: o.sipbindaddr,
    port: o.siprelayport,
    addressOf: (n: string) => dir.addressOf(n),
    nodeOfTag: (t: string) => dir.nodeOfTag(t),
  };
  const alone = { self: 1, count: 1, secret: randomBytes(32), announce: () => undefined };
  const handoff = relayOpts ? { ...(workers ?? alone), relay: relayOpts } : workers;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (o.usetls) {
    try {
      tls = { cert: readFileSync(resolve(dataDir, o.tlscert)), key: readFileSync(resolve(dataDir, o.tlskey)) };
    } catch (e) {
      throw new Error(
        `usetls is on but the certificate or key cannot be read (${(e as Error).message}); set tlscert/tlskey or ` +
          `run "voxswitch gencert"`,
      );
    }
  }
  const stack = new SipStack({
    bindAddr: o.sipbindaddr,
    udpPort: o.sipport,
    tcpPort: o.sipport,
    tlsPort: o.usetls ? o.siptlsport : undefined,
    wsPort: o.sipwsport && !o.usetls ? o.sipwsport : undefined,
    wssPort: o.sipwsport && o.usetls ? o.sipwsport : undefined,
    tls,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
    maxConnectionsPerIp: o.sipmaxconnperip,
    isBanned: (ip) => services.bans.isBanned(ip),
    refuseNew: {
      wait: () => services.overload?.queueWait?.() ?? 0,
      refused: () => services.overload?.refusedEarly?.(),
    },
    handoff,
    log: services.log,
  });
  return new SipServer(services, stack, { apiHandler, digestAlgorithms: o.sipdigest, secret: keys.nonce, shed, relay });
}

/** The SIP status of a refused SMS, by the kind of the domain's refusal. */
const SMS_REFUSAL: Partial<Record<string, [number, string]>> = {
  insufficient: [402, 'Payment Required'],
  config: [503, 'Service Unavailable'],
  unavailable: [503, 'Service Unavailable'],
  notfound: [404, 'Not Found'],
  denied: [403, 'Forbidden'],
  input: [488, 'Not Acceptable Here'],
};

/**
 * MESSAGE from a registered user to a phone number → an SMS through the SMS service (rated and charged as any
 * SMS, the sender rules of the account applied); GSM 7-bit when the text allows it, else UCS-2.
 */
export function phoneMessagesAsSms(services: Services): PhoneMessageHandler {
  return async (from, number, text) => {
    const user = await services.users.byUsername(from);
    try {
      const encoding = nonGsmChars(text).length ? 'ucs2' : 'gsm7';
      const a = await services.sms.send({ user, sender: '', destination: number, text, encoding, operator: false });
      services.log.info({ from, sms: a.id, to: a.destination, parts: a.parts }, 'SIP MESSAGE sent as SMS');
      return { status: 202, reason: `Accepted (SMS ${a.id})` };
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      const [status, phrase] = SMS_REFUSAL[e.kind] ?? [500, 'Server Internal Error'];
      const why = e.message.replace(/[\r\n]+/g, ' ').slice(0, 120);
      return { status, reason: `${phrase} (${why})` };
    }
  };
}
