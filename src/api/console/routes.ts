/**
 * The web console under /console on the API ports: its built pages, and a small JSON API for them. Every
 * /console/api/ answer except log-in needs a session; every POST needs the same origin and the session's CSRF token.
 * Commands run through the API gateway as the logged-in user (ApiGateway.handleAs): the console adds no right.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiGateway } from '../gateway.js';
import type { Services } from '../../services.js';
import { FORMATS, type Format } from '../types.js';
import { httpSource } from '../transports/source.js';
import { rankOf, typeName } from '../../domain/accounts/types.js';
import type { User } from '../../domain/accounts/users.js';
import { ConsoleSessions, type Session } from './sessions.js';
import { StaticFiles } from './static.js';
import { LiveEvents } from './events.js';
import { ConsoleData } from './data.js';
import { importTariffs } from './tariffs.js';
import {
  BodyError,
  clearedCookie,
  cookieOf,
  isSecure,
  readJson,
  sameOrigin,
  sendError,
  sendJson,
  sessionCookie,
  stringParams,
  SECURITY_HEADERS,
} from './web.js';

const SMALL_BODY = 64 * 1024;

export class WebConsole {
  readonly sessions: ConsoleSessions;
  private readonly files: StaticFiles;
  private readonly events: LiveEvents;
  private readonly data: ConsoleData;

  constructor(
    private readonly s: Services,
    private readonly gateway: ApiGateway,
    files?: StaticFiles,
  ) {
    this.sessions = new ConsoleSessions(s.state.ttl('console'), () => ({
      idleMs: s.config.get('consoleidle') * 1000,
      absoluteMs: s.config.get('consolesession') * 1000,
    }));
    this.files = files ?? new StaticFiles();
    this.events = new LiveEvents(gateway, s);
    this.data = new ConsoleData(s);
  }

  close(): void {
    this.events.close();
  }

  /** Answers a request whose path starts with /console. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (!this.s.config.get('webconsole'))
      return sendError(res, 404, 'the web console is off (set webconsole=true to serve it)');
    if (path === '/console') {
      res.writeHead(308, { ...SECURITY_HEADERS, location: '/console/' });
      res.end();
      return;
    }
    if (!path.startsWith('/console/api/')) return this.page(path.slice('/console'.length), method, res);
    const route = path.slice('/console/api/'.length);
    const secure = isSecure(req);
    const source = httpSource(req, secure ? 'https' : 'http', this.s.ownHosts());
    if (method === 'POST' && !sameOrigin(req, this.s.ownHosts()))
      return sendError(res, 403, 'cross-site request refused: the console accepts requests from its own pages only');
    if (method !== 'GET' && method !== 'POST') return sendError(res, 405, `method ${method} is not supported`);
    try {
      if (route === 'login' && method === 'POST') return await this.login(req, res, secure, source);
      const id = cookieOf(req);
      const session = await this.sessions.get(id);
      if (!session) return sendError(res, 401, 'not logged in (or the session expired): log in again');
      if (method === 'POST' && !this.sessions.csrfMatches(session, header(req, 'x-csrf-token')))
        return sendError(res, 403, 'missing or wrong CSRF token (x-csrf-token): reload the console');
      const user = await this.s.users.byId(session.userId);
      if (!user || !user.enabled) {
        await this.sessions.delete(id);
        return sendError(res, 401, 'your account is disabled or gone: log in again');
      }
      await this.route(route, method, req, res, { id: id!, session, user, source, secure }, url);
    } catch (e) {
      if (e instanceof BodyError) return sendError(res, 400, e.message);
      throw e;
    }
  }

  private page(path: string, method: string, res: ServerResponse): void {
    if (method !== 'GET' && method !== 'HEAD') return sendError(res, 405, `method ${method} is not supported`);
    if (!this.files.built)
      return sendError(res, 503, 'the web console is not built: run "npm start" (or node scripts/ensure.mjs)');
    if (this.files.serve(path, res, method === 'HEAD')) return;
    // a page path of the single-page console (not a missing asset) gets the page itself
    if (!/\.[a-z0-9]+$/i.test(path) && this.files.serve('/', res, method === 'HEAD')) return;
    sendError(res, 404, 'no such file');
  }

  private async login(
    req: IncomingMessage,
    res: ServerResponse,
    secure: boolean,
    source: ReturnType<typeof httpSource>,
  ): Promise<void> {
    const b = stringParams(await readJson(req, SMALL_BODY));
    const authid = (b.username ?? '').trim();
    if (!authid) return sendError(res, 400, 'username is required');
    const params: Record<string, string> =
      b.authmd5 !== undefined
        ? { authid, authmd5: b.authmd5, authsalt: b.authsalt ?? '' }
        : { authid, authpwd: b.password ?? '' };
    const r = await this.gateway.login(params, source);
    if ('error' in r) return sendError(res, 403, r.error);
    const { id, session } = await this.sessions.create(r.user.id);
    this.s.log.info({ user: r.user.username, ip: source.ip }, 'web console log-in');
    sendJson(res, 200, this.me(r.user, session, req), { 'set-cookie': sessionCookie(id, secure) });
  }

  private me(user: User, session: Session, req: IncomingMessage) {
    const o = this.s.config.options;
    const admin = rankOf(user.type) <= 4;
    return {
      user: { username: user.username, type: typeName(user.type), rank: rankOf(user.type) },
      csrf: session.csrf,
      expires: { idle: o.consoleidle, absolute: session.createdAt + o.consolesession * 1000 },
      server: {
        version: this.s.version,
        host: req.headers.host ?? '',
        tls: o.usetls ? o.tlsport : 0,
        jsonp: o.enablejsonp,
        keyRequired: Boolean(o.apiv2key || o.httpapikey),
        // the server admin sees the key and salt the examples need; others fill in what the operator gave them
        authkey: admin ? o.apiv2key || o.httpapikey : undefined,
        md5salt: admin ? o.apiv2md5salt : undefined,
      },
    };
  }

  private async route(
    route: string,
    method: string,
    req: IncomingMessage,
    res: ServerResponse,
    c: { id: string; session: Session; user: User; source: ReturnType<typeof httpSource>; secure: boolean },
    url: URL,
  ): Promise<void> {
    const key = `${method} ${route}`;
    switch (key) {
      case 'GET session':
        return sendJson(res, 200, this.me(c.user, c.session, req));
      case 'POST logout':
        await this.sessions.delete(c.id);
        return sendJson(res, 200, { ok: true }, { 'set-cookie': clearedCookie(c.secure) });
      case 'GET commands':
        return sendJson(res, 200, { commands: this.gateway.consoleCommands(c.user, c.source) });
      case 'POST run': {
        const b = await readJson(req, this.s.config.get('maxrequestsize'));
        const format = (typeof b.format === 'string' ? b.format : 'text') as Format;
        if (!FORMATS.includes(format)) return sendError(res, 400, `format must be one of ${FORMATS.join(', ')}`);
        const command = typeof b.command === 'string' ? b.command : '';
        const result = await this.gateway.handleAs(c.user.id, command, stringParams(b.params), c.source);
        const enc = this.gateway.encodeAs(result, format);
        return sendJson(res, 200, { result, encoded: { status: enc.status, type: enc.contentType, body: enc.body } });
      }
      case 'GET events':
        return this.events.stream(req, res, c.user, c.source, () => this.sessions.get(c.id), viewsOf(url));
      case 'POST tariffs/import':
        return importTariffs(this.s, c.user, req, res);
      case 'GET cdrs':
      case 'GET cdrs.csv':
      case 'GET charts':
        return this.data.answer(route, url.searchParams, c.user, res);
      default:
        return sendError(res, 404, `no console API ${method} /console/api/${route}`);
    }
  }
}

/** The live views a stream asks for (`?views=calls,queues`); none: all of them. */
function viewsOf(url: URL): string[] | undefined {
  const v = url.searchParams.get('views');
  return v ? v.split(',').map((x) => x.trim()) : undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
