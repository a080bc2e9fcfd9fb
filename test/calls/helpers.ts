/** Shared set-up of the call tests: a server, its own SIP stack + SipServer + B2BUA, sipp runners, tariffs. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SipStack } from '../../src/sip/stack.js';
import { SipServer } from '../../src/sip/server.js';
import { B2bua, type Router } from '../../src/sip/calls/b2bua.js';
import { LiveCalls } from '../../src/domain/calls/livecalls.js';
import type { RouteDecision, RouteRequest, GatewayCandidate } from '../../src/domain/routing/service.js';
import type { Services } from '../../src/services.js';
import type { User } from '../../src/domain/accounts/users.js';
import { toolPath } from '../helpers/tools.js';
import { freePort } from '../helpers/ports.js';
import { runTool, startListening, type Listening } from '../helpers/processes.js';

export const SCEN = resolve(process.cwd(), 'test/calls/scenarios');
export const SIPP = toolPath('sipp');
export { freePort, runTool };

export interface CallEnv {
  t: TestServer;
  services: Services;
  sip: SipServer;
  stack: SipStack;
  b2bua: B2bua;
  router: TestRouter;
  udpPort: number;
  tcpPort: number;
  stop(): Promise<void>;
}

/**
 * Routing for the tests (independent of the real RoutingService): a username → that user with their
 * forward rules; digits → the gateways set in `gateways`, rated for the caller by RatingService.
 */
export class TestRouter implements Router {
  gateways: GatewayCandidate[] = [];
  constructor(private readonly s: Services) {}
  async gatewayForIp(): Promise<undefined> {
    return undefined;
  }
  async route(r: RouteRequest): Promise<RouteDecision> {
    const u = await this.s.users.byUsername(r.called).catch(() => undefined);
    if (u) {
      const f = await this.s.numbers.getForward(u.id);
      return {
        kind: 'user',
        user: u as User,
        number: u.username,
        forward: { always: f.always || undefined, busy: f.busy || undefined, noanswer: f.noanswer || undefined },
      };
    }
    if (!/^\+?\d+$/.test(r.called)) return { kind: 'reject', status: 404, reason: 'Not Found' };
    if (!r.user) return { kind: 'reject', status: 403, reason: 'Forbidden' };
    try {
      const quote = await this.s.rating.quote({ id: r.user.id, country: r.user.country ?? '' }, r.called);
      return {
        kind: 'gateways',
        number: quote.number,
        rate: quote.rate,
        quote,
        candidates: this.gateways.map((g) => ({ ...g, number: quote.number })),
      };
    } catch (e) {
      return { kind: 'reject', status: 404, reason: (e as Error).message };
    }
  }
}

/**
 * A test server with its own SIP stack and B2BUA on free loopback ports. `options` are the server's options for the
 * test (rtprelay, accessnumber, …); `router` builds a TestRouter of the test's own (the default routes to
 * `router.gateways`).
 */
export async function startCallEnv(
  opts: {
    maxCallSeconds?: number;
    noAnswerSeconds?: number;
    options?: Record<string, string>;
    router?: (s: CallEnv['services']) => TestRouter;
  } = {},
): Promise<CallEnv> {
  const t = await startTestServer({ usesip: 'false', authfailban: '0', ...opts.options });
  const services = t.srv.services;
  const o = services.config.options;
  const stack = new SipStack({
    bindAddr: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    maxMessageSize: o.sipmaxmessage,
    maxConnections: o.sipmaxconnections,
  });
  const sip = new SipServer(services, stack);
  const l = await sip.start();
  services.sip = sip;
  const router = opts.router ? opts.router(services) : new TestRouter(services);
  // the live calls the API commands see (disccall, quickstat); a test's max call age needs its own
  if (opts.maxCallSeconds !== undefined) {
    services.liveCalls.stop();
    services.liveCalls = new LiveCalls(services, { maxCallSeconds: opts.maxCallSeconds });
  }
  const b2bua = new B2bua(
    { services, sip, router, live: services.liveCalls },
    { noAnswerSeconds: opts.noAnswerSeconds },
  );
  b2bua.start();
  return {
    t,
    services,
    sip,
    stack,
    b2bua,
    router,
    udpPort: l.find((x) => x.transport === 'udp')!.port,
    tcpPort: l.find((x) => x.transport === 'tcp')?.port ?? 0,
    async stop() {
      await b2bua.stop();
      await sip.stop();
      await t.stop();
    },
  };
}

/** Injection file for uac_auth*.xml: `user;[authentication …];callee`. */
export function uacCsv(dir: string, name: string, lines: Array<[string, string, string]>): string {
  const f = join(dir, name);
  writeFileSync(
    f,
    'SEQUENTIAL\n' +
      lines.map(([u, p, c]) => `${u};[authentication username=${u} password=${p}];${c}`).join('\n') +
      '\n',
  );
  return f;
}

/**
 * A sipp UAS on a free port, or on `port` when given (TCP when `extra` selects `-t t1`): resolves once sipp has bound
 * the port; `done` resolves when it ended.
 */
export function uas(dir: string, scenario: string, extra: string[] = [], port?: number): Promise<Listening> {
  const tcp = extra.some((x, i) => x === 't1' && extra[i - 1] === '-t');
  return startListening(
    SIPP,
    (port) => [
      '-sf',
      join(SCEN, scenario),
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-t',
      'u1',
      '-trace_err',
      '-error_file',
      join(dir, `uas-${port}.err`),
      ...extra,
    ],
    { cwd: dir, proto: tcp ? 'tcp' : 'udp', port },
  );
}

export function uac(env: CallEnv, dir: string, scenario: string, inf: string, calls = 1, extra: string[] = []) {
  return runTool(
    SIPP,
    [
      '127.0.0.1:' + env.udpPort,
      '-sf',
      join(SCEN, scenario),
      '-inf',
      inf,
      '-m',
      String(calls),
      '-i',
      '127.0.0.1',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-t',
      'u1',
      '-trace_err',
      '-error_file',
      join(dir, 'uac.err'),
      ...extra,
    ],
    dir,
  );
}

/** Registers `username` at a sipp UAS listening on 127.0.0.1:port only (directly in the location store). */
export function registerAt(env: CallEnv, username: string, port: number, transport: 'udp' | 'tcp' = 'udp'): void {
  env.sip.location.removeAll(username, `unreg-${username}-${port}`, 1);
  const r = env.sip.location.update(username, `reg-${username}-${port}`, 1, [
    {
      contact: `sip:${username}@127.0.0.1:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`,
      expires: 300,
      transport,
      srcIp: '127.0.0.1',
      srcPort: port,
      userAgent: 'sipp',
      q: 1,
    },
  ]);
  if (!r.ok) throw new Error(`register ${username}: ${r.reason}`);
}

/** A tariff plan named "default" in the users' currency with the given rates (price per minute, micro-units). */
export async function setRates(
  s: Services,
  currency: string,
  rates: Array<{ prefix: string; price: number; connectfee?: number; minduration?: number; increment?: number }>,
): Promise<void> {
  const db = s.storage.db;
  let plan = await db.selectFrom('tb_tariffplans').select('id').where('name', '=', 'default').executeTakeFirst();
  if (!plan)
    plan = await db
      .insertInto('tb_tariffplans')
      .values({ name: 'default', currency, created_at: Date.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
  const planid = Number(plan.id);
  await db.deleteFrom('tb_tariffs').where('planid', '=', planid).execute();
  for (const r of rates) {
    await db
      .insertInto('tb_tariffs')
      .values({
        planid,
        prefix: r.prefix,
        destination: `dest ${r.prefix}`,
        price: r.price,
        connectfee: r.connectfee ?? 0,
        minduration: r.minduration ?? 0,
        increment: r.increment ?? 1,
        currency,
        valid_from: null,
        valid_to: null,
      })
      .execute();
  }
  await s.rating.load();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Adds one more device of `username` (parallel forking). */
export function registerAlso(env: CallEnv, username: string, port: number): void {
  const r = env.sip.location.update(username, `reg2-${username}-${port}`, 1, [
    {
      contact: `sip:${username}@127.0.0.1:${port}`,
      expires: 300,
      transport: 'udp',
      srcIp: '127.0.0.1',
      srcPort: port,
      userAgent: 'sipp',
      q: 1,
    },
  ]);
  if (!r.ok) throw new Error(`register ${username}: ${r.reason}`);
}

/** Polls `f` until `ok` holds or `ms` passed; returns the last value (the caller asserts on it). */
export async function waitFor<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await sleep(50);
    v = await f();
  }
  return v;
}

export interface TracedMessage {
  /** When sipp sent or received it (ms, on sipp's local clock: compare these with each other only). */
  at: number;
  dir: 'sent' | 'received';
  /** The start line. */
  first: string;
}

/** The messages a sipp instance logged with `-trace_msg -message_file FILE`, in order. */
export function sippTrace(file: string): TracedMessage[] {
  const out: TracedMessage[] = [];
  const text = readFileSync(file, 'utf8');
  const re = /^-{5,} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d+)\n[^\n]*message (sent|received)[^\n]*\n\s*([^\n]*)/gm;
  for (const m of text.matchAll(re)) {
    const at = Date.parse(`${m[1]}T${m[2]}Z`) + Number(`0.${m[3]}`) * 1000;
    out.push({ at, dir: m[4] as 'sent' | 'received', first: m[5]!.trim() });
  }
  return out;
}
