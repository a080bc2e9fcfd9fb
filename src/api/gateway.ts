/**
 * The API pipeline every transport uses: decode → ban and usage checks → rule (command defaults + tb_api) →
 * authentication → command (or custom SQL) → result → encode. Transports only move bytes.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ApiDirectory, Caller, CommandContext } from './context.js';
import type { Services } from '../services.js';
import { bindParams, type Registry, type UserMode } from './registry.js';
import type { ApiRules, Rule } from './auth/rules.js';
import type { CommandDecl } from './declaration.js';
import { buildOpenApi } from './openapi.js';
import { fail, ok, type ApiRequest, type ApiResult, type Format, type Source } from './types.js';
import { Authenticator } from './auth/authenticate.js';
import { UsageLimits } from './auth/limits.js';
import { SaltStore } from './auth/salts.js';
import { isLoopback, isPrivate } from '../domain/security/ip.js';
import { decodeHttp, decodeMessage, DecodeError, type DecodeResult } from './decode/index.js';
import { encode, type Encoded } from './encode/index.js';
import { CustomSqlRunner } from './customsql/runner.js';
import { DomainError } from '../domain/errors.js';
import type { User } from '../domain/accounts/users.js';
import { rankOf } from '../domain/accounts/types.js';

export interface GatewayParts {
  /** The declared commands (src/api/commands/index.ts). */
  registry: Registry;
  /** The tb_api rules, loaded. */
  rules: ApiRules;
}

export class ApiGateway {
  readonly auth: Authenticator;
  readonly registry: Registry;
  readonly rules: ApiRules;
  private readonly apis: ApiDirectory;
  private readonly limits: UsageLimits;
  private readonly salts: SaltStore;
  readonly customSql: CustomSqlRunner;
  private admin?: User;
  /** Requests handled since start (info / quickstat). */
  requests = 0;
  /** Called with each answer of handle() and its time in seconds (the metrics). */
  onAnswered?: (entry: string, result: ApiResult, seconds: number) => void;

  constructor(
    private readonly s: Services,
    parts: GatewayParts,
  ) {
    this.registry = parts.registry;
    this.rules = parts.rules;
    this.apis = {
      commands: () => this.registry.all().map((d) => ({ ...d, available: Boolean(d.run) })),
      customOnly: () => this.rules.customNames().filter((n) => !this.registry.get(n)),
      reloadRules: () => this.rules.load(),
    };
    const o = s.config.options;
    // in one process: the salt map and memory limiters of this process; with Redis: shared by every node
    const shared = s.state.kind === 'redis';
    this.salts = new SaltStore(o.apisaltwindow * 1000, undefined, shared ? s.state.once : undefined);
    const limitCfg = { perIp: o.apilimitip, perUser: o.apilimituser, global: o.apilimitglobal };
    this.limits = new UsageLimits(limitCfg, s.state.limits);
    this.auth = new Authenticator(s.users, this.salts, () => this.admin, o);
    this.customSql = new CustomSqlRunner({ dialect: s.storage.dialect, location: s.storage.location, maxRows: 100 });
    s.config.onChange((n) => {
      this.salts.setWindow(n.apisaltwindow * 1000);
      this.limits.configure({ perIp: n.apilimitip, perUser: n.apilimituser, global: n.apilimitglobal });

      this.auth.configure(n);
      s.bans.setPolicy({ threshold: n.authfailban, windowMs: n.authfailwindow * 1000, banMs: n.bantime * 1000 });
    });
  }

  /** The server admin identity trusted sources act as. */
  async loadAdmin(): Promise<void> {
    const r = await this.s.storage.db
      .selectFrom('tb_users')
      .select('username')
      .where('type', '=', 1)
      .orderBy('id')
      .executeTakeFirst();
    this.admin = r ? await this.s.users.byUsername(r.username) : undefined;
  }

  async close(): Promise<void> {
    await this.customSql.close();
  }

  /** Runs one decoded request through checks, authentication and the command; one access line (log tcp). */
  async handle(req: ApiRequest): Promise<ApiResult> {
    const access = this.s.logs.get('tcp');
    const logged = access.isLevelEnabled('info');
    if (!logged && !this.onAnswered) return this.handleChecked(req);
    const t0 = performance.now();
    const r = await this.handleChecked(req);
    if (logged) access.info(accessLine(req.source, req.entry, r, t0));
    this.onAnswered?.(req.entry, r, (performance.now() - t0) / 1000);
    return r;
  }

  private async handleChecked(req: ApiRequest): Promise<ApiResult> {
    const { s } = this;
    this.requests++;
    const ip = req.source.ip;
    const wait = req.source.transport === 'console' ? 0 : (s.overload?.shed('api') ?? 0);
    if (wait) return fail(`server overloaded, retry in ${wait} s`, { legacyStatus: 503 });
    if (s.bans.isBanned(ip))
      return fail('your address is banned after repeated authentication failures; ask the operator (delbanned)', {
        legacyStatus: 403,
      });
    if (!req.entry) return fail('no API entry given: send apientry=NAME (see help)', { legacyStatus: 406 });
    if (req.source.transport !== 'console') {
      const limited = await this.limits.checkSource(ip);
      if (limited) return fail(limited, { legacyStatus: 412 });
    }
    const def = this.registry.get(req.entry);
    const rule = this.rules.resolve(req.entry, def, s.config.get('apiv2auth') as UserMode);
    if (!rule) return fail(`unknown API "${req.entry}": see help for the list`, { legacyStatus: 406 });

    const a = await this.auth.authenticate(req, rule);
    if (!a.ok) {
      if (a.failure) {
        s.log.warn(
          { ip, transport: req.source.transport, entry: req.entry, user: claimedUser(req) },
          'API login failed',
        );
        await s.bans.recordFailure(ip, 'API authentication');
      }
      return fail(a.message, { legacyStatus: a.legacyStatus });
    }
    return this.dispatch(req, def, rule, a.caller);
  }

  /**
   * A web console session's command: runs as `user` (re-read, so a disabled account stops at once) with that user's
   * levels, without authentication but with every other check (bans, usage limits, disabled rules, req_user). The
   * console grants no address trust: a req_ip=1 rule passes only for an address listed in apiv2ipauth or
   * trustediplist, never because the browser is local.
   */
  async handleAs(userId: number, entry: string, params: Record<string, string>, source: Source): Promise<ApiResult> {
    const access = this.s.logs.get('tcp');
    if (!access.isLevelEnabled('info')) return this.handleAsChecked(userId, entry, params, source);
    const t0 = performance.now();
    const r = await this.handleAsChecked(userId, entry, params, source);
    access.info({ ...accessLine(source, entry, r, t0), user: userId });
    return r;
  }

  private async handleAsChecked(
    userId: number,
    entry: string,
    params: Record<string, string>,
    source: Source,
  ): Promise<ApiResult> {
    const { s } = this;
    this.requests++;
    const wait = s.overload?.shed('api') ?? 0;
    if (wait) return fail(`server overloaded, retry in ${wait} s`, { legacyStatus: 503 });
    if (s.bans.isBanned(source.ip))
      return fail('your address is banned after repeated authentication failures; ask the operator (delbanned)', {
        legacyStatus: 403,
      });
    const limited = await this.limits.checkSource(source.ip);
    if (limited) return fail(limited, { legacyStatus: 412 });
    const user = await s.users.byId(userId);
    if (!user || !user.enabled) return fail('your account is disabled or gone: log in again', { legacyStatus: 403 });
    const name = entry.trim().toLowerCase();
    if (!name) return fail('no API entry given: send apientry=NAME (see help)', { legacyStatus: 406 });
    const def = this.registry.get(name);
    const rule = this.rules.resolve(name, def, s.config.get('apiv2auth') as UserMode);
    if (!rule) return fail(`unknown API "${name}": see help for the list`, { legacyStatus: 406 });
    const why = this.consoleRefusal(rule, user, source);
    if (why) return fail(why, { legacyStatus: 403 });
    const req: ApiRequest = { entry: name, params, positional: [], format: 'json', source };
    return this.dispatch(req, def, rule, { user, via: 'session', trustedIp: false });
  }

  /** Why a console session may not call a rule's API (undefined: it may). */
  private consoleRefusal(rule: Rule, user: User, source: Source): string | undefined {
    if (rule.reqUser === 2) return 'this API is disabled';
    if (rule.reqIp === 1 && !this.auth.listedForConsole(source.ip))
      return (
        `this API is allowed only from listed addresses: add ${source.ip} to apiv2ipauth ` +
        '(the console grants no address trust)'
      );
    if (rule.reqUser !== 14 && rankOf(user.type) > rule.reqUser) return 'this API is not allowed for your user type';
    return undefined;
  }

  /** The declared commands a console session's user may call from this address (the console's completion). */
  consoleCommands(user: User, source: Source): Array<CommandDecl & { available: boolean; reqUser: number }> {
    const mode = this.s.config.get('apiv2auth') as UserMode;
    const out: Array<CommandDecl & { available: boolean; reqUser: number }> = [];
    for (const d of this.registry.all()) {
      const rule = this.rules.resolve(d.name, d, mode);
      if (!rule || this.consoleRefusal(rule, user, source)) continue;
      const { run: _run, ...decl } = d;
      out.push({ ...decl, available: Boolean(d.run) && !rule.refused, reqUser: rule.reqUser });
    }
    return out;
  }

  /**
   * A console log-in: a user name with its password, or authmd5+authsalt as the API computes it, checked by the API's
   * own authentication (a web page is never trusted by address). A failure counts toward the address's ban.
   */
  async login(params: Record<string, string>, source: Source): Promise<{ user: User } | { error: string }> {
    const { s } = this;
    if (s.bans.isBanned(source.ip))
      return { error: 'your address is banned after repeated authentication failures; ask the operator (delbanned)' };
    const limited = await this.limits.checkSource(source.ip);
    if (limited) return { error: limited };
    const req: ApiRequest = {
      entry: 'login',
      params,
      positional: [],
      format: 'json',
      source: { ...source, browser: true },
    };
    const a = await this.auth.authenticate(req, { reqKey: 0, reqIp: 0, reqUser: 12, userMode: 6 });
    if (!a.ok) {
      if (a.failure) {
        s.log.warn({ ip: source.ip, transport: source.transport, user: claimedUser(req) }, 'console login failed');
        await s.bans.recordFailure(source.ip, 'console log-in');
      }
      return { error: a.message };
    }
    if (!a.caller.user) return { error: 'authentication required: username with password' };
    return { user: a.caller.user };
  }

  /** The command itself, once the caller is known: usage limit per user, custom SQL or the handler. */
  private async dispatch(
    req: ApiRequest,
    def: ReturnType<Registry['get']>,
    rule: Rule,
    caller: Caller,
  ): Promise<ApiResult> {
    const { s } = this;
    if (caller.user && req.source.transport !== 'console') {
      const limited = await this.limits.checkUser(caller.user.id);
      if (limited) return fail(limited, { legacyStatus: 412 });
    }
    const ctx: CommandContext = {
      services: s,
      caller,
      req,
      apis: this.apis,
      mayUse: (name) => this.mayUse(name, caller, req),
    };
    try {
      if (rule.refused) return fail(rule.refused);
      if (rule.customsql) return await this.runCustom(rule.customsql, ctx);
      if (!def) return fail(`unknown API "${req.entry}"`, { legacyStatus: 406 });
      if (!def.run)
        return fail(def.unavailable ?? `${def.name} is not available yet in voxswitch ${s.version}`, {
          legacyStatus: 412,
        });
      const params = bindParams(def, req.params, req.positional);
      return await def.run(ctx, params);
    } catch (e) {
      // the one mapping of a refusal: its message is the ERROR text, its legacyStatus the old-API status
      if (e instanceof DomainError) return fail(e.message, { legacyStatus: e.legacyStatus });
      s.log.error({ err: e, entry: req.entry }, 'API command failed');
      return fail(`${req.entry} failed: internal error (see the server log)`);
    }
  }

  /** The OpenAPI 3.1 description of every command under the effective tb_api rules (served at /openapi.json). */
  openApi(): Record<string, unknown> {
    const mode = this.s.config.get('apiv2auth') as UserMode;
    return buildOpenApi({
      commands: this.registry.all(),
      rule: (def) =>
        this.rules.resolve(def.name, this.registry.get(def.name), mode) ?? {
          reqKey: def.reqKey ?? 1,
          reqIp: def.reqIp ?? 0,
          reqUser: def.level,
          userMode: mode,
        },
      version: this.s.version,
      customOnly: this.rules.customNames().filter((n) => !this.registry.get(n)),
    });
  }

  /** The gateway's own checks, for `help`: rule exists and is enabled, the IP rule passes, the level fits. */
  private mayUse(name: string, caller: Caller, req: ApiRequest): boolean {
    const rule = this.rules.resolve(name, this.registry.get(name), this.s.config.get('apiv2auth') as UserMode);
    if (!rule || rule.reqUser === 2) return false;
    if (rule.reqIp === 1 && !this.auth.ipRuleAllows(req)) return false;
    if (rule.reqUser === 14) return true;
    return caller.user ? rankOf(caller.user.type) <= rule.reqUser : caller.trustedIp;
  }

  private async runCustom(sql: string, ctx: CommandContext): Promise<ApiResult> {
    const sparams: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.req.params)) if (/^sparam\d{1,2}$/.test(k)) sparams[k] = v;
    const user = ctx.caller.user;
    const r = await this.customSql
      .run(
        sql,
        { userId: user?.id ?? 0, username: user?.username ?? '', sparams },
        this.s.config.get('customsqltimeout'),
      )
      .finally(() => {
        // the statement may have changed accounts outside the services: drop their caches
        if (!/^\s*\*?\s*select\b/i.test(sql)) this.s.users.clearCache();
      });
    if ('queued' in r) return ok('query queued');
    if (r.changes !== undefined && !r.columns.length)
      return ok(`${r.changes} row(s) affected`, { fields: { changes: r.changes } });
    return ok(
      r.truncated ? `${r.rows.length} rows (more rows matched: answers are limited to 100)` : `${r.rows.length} rows`,
      { columns: r.columns, rows: r.rows },
    );
  }

  /** A result in one of the document's formats (the web console shows answers as the API would send them). */
  encodeAs(r: ApiResult, format: Format): Encoded {
    return this.encodeFor({ format, callback: format === 'jsonp' ? 'callback' : undefined }, r);
  }

  private decodeOpts() {
    return { encryptKey: this.s.config.get('httpapiencryptkey') };
  }

  private encodeFor(req: Pick<ApiRequest, 'format' | 'callback' | 'legacy'>, r: ApiResult): Encoded {
    return encode(r, {
      format: req.format,
      callback: req.callback,
      legacy: req.legacy,
      strict: this.s.config.get('httpstrictresponse'),
    });
  }

  private errorAnswer(e: unknown, source: Source, legacy = false): { enc: Encoded; result: ApiResult } {
    const msg = e instanceof DecodeError ? e.message : 'malformed request';
    if (!(e instanceof DecodeError)) this.s.log.warn({ err: e, ip: source.ip }, 'undecodable request');
    const result = fail(msg, { legacyStatus: 406 });
    return { result, enc: encode(result, { format: 'text', legacy, strict: this.s.config.get('httpstrictresponse') }) };
  }

  private async resolve(d: DecodeResult): Promise<{ enc: Encoded; result: ApiResult }> {
    if (d.kind === 'jppget') return this.jppget(d.url, d.callback, d.source);
    if (d.req.format === 'jsonp' && this.s.config.get('enablejsonp') === 0) {
      const result = fail('JSONP is disabled (set enablejsonp=1 for local or 2 for remote URLs)', {
        legacyStatus: 406,
      });
      return {
        result,
        enc: encode(result, { format: 'text', legacy: d.req.legacy, strict: this.s.config.get('httpstrictresponse') }),
      };
    }
    const result = await this.handle(d.req);
    return { result, enc: this.encodeFor(d.req, result) };
  }

  /** An HTTP request (any method/URL shape/body format) → encoded answer. */
  async http(
    method: string,
    target: string,
    contentType: string,
    body: Buffer,
    source: Source,
  ): Promise<{ enc: Encoded; result: ApiResult }> {
    let d: DecodeResult;
    try {
      d = await decodeHttp(method, target, contentType, body, source, this.decodeOpts());
    } catch (e) {
      return this.errorAnswer(e, source, /xmapi\//i.test(target));
    }
    return this.resolve(d);
  }

  /** One text message (TCP line, UDP datagram, WebSocket message) → encoded answer. */
  async message(text: string, source: Source): Promise<{ enc: Encoded; result: ApiResult }> {
    let d: DecodeResult;
    try {
      d = decodeMessage(text, source, this.decodeOpts());
    } catch (e) {
      return this.errorAnswer(e, source);
    }
    return this.resolve(d);
  }

  /**
   * jppget?url=…: JSONP over another API URL. A URL of this server (or a bare /mvapireq/… path) is answered
   * in-process (enablejsonp ≥ 1); a remote URL is fetched and wrapped only with enablejsonp=2.
   */
  private async jppget(
    url: string,
    callback: string | undefined,
    source: Source,
  ): Promise<{ enc: Encoded; result: ApiResult }> {
    const mode = this.s.config.get('enablejsonp');
    const cb = callback ?? 'callback';
    const wrap = (result: ApiResult) => ({
      result,
      enc: encode(result, { format: 'jsonp', callback: cb, strict: false }),
    });
    if (mode === 0) return wrap(fail('JSONP is disabled (set enablejsonp=1 for local or 2 for remote URLs)'));
    if (!url) return wrap(fail('jppget needs url=…'));
    let target: URL;
    try {
      target = new URL(url, 'http://local.invalid/');
    } catch {
      return wrap(fail('jppget: url is not a URL'));
    }
    const local = target.hostname === 'local.invalid' || this.isOwnHost(target.hostname);
    if (local) {
      let d: DecodeResult;
      try {
        d = await decodeHttp('GET', target.pathname + target.search, '', Buffer.alloc(0), source, this.decodeOpts());
      } catch (e) {
        return wrap(fail(e instanceof DecodeError ? e.message : 'malformed request'));
      }
      if (d.kind === 'jppget') return wrap(fail('jppget: nested jppget is not allowed'));
      const result = await this.handle({ ...d.req, format: 'jsonp', callback: cb });
      return wrap(result);
    }
    if (mode !== 2) return wrap(fail('jppget: remote URLs need enablejsonp=2'));
    return wrap(await this.fetchRemote(target));
  }

  private async fetchRemote(target: URL): Promise<ApiResult> {
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return fail('jppget: only http and https URLs');
    try {
      const addr = isIP(target.hostname.replace(/^\[|\]$/g, ''))
        ? target.hostname.replace(/^\[|\]$/g, '')
        : (await lookup(target.hostname)).address;
      if (isLoopback(addr) || isPrivate(addr) || addr === '0.0.0.0' || addr === '::')
        return fail('jppget: remote URL resolves to a local or private address');
      const res = await fetch(target, { redirect: 'error', signal: AbortSignal.timeout(5000) });
      const text = (await res.text()).slice(0, 256 * 1024);
      return res.ok ? ok(text) : fail(`jppget: remote answered HTTP ${res.status}`);
    } catch (e) {
      return fail(`jppget: ${(e as Error).message}`);
    }
  }

  /** Host names and addresses that are this server (HTTP Host check). */
  isOwnHost(host: string): boolean {
    return this.s.ownHosts().has(host.toLowerCase().replace(/^\[|\]$/g, ''));
  }
}

/** The access-log line of one request: never its parameters (passwords, authmd5, keys stay out). */
function accessLine(src: Source, entry: string, r: ApiResult, t0: number): Record<string, unknown> {
  const line: Record<string, unknown> = {
    transport: src.transport,
    src: `${src.ip}:${src.port}`,
    cmd: entry.slice(0, 64),
    status: r.ok ? 'OK' : 'ERROR',
    code: r.legacyStatus ?? r.code,
    ms: Math.round((performance.now() - t0) * 100) / 100,
  };
  if (!r.ok) line.err = r.text.slice(0, 200);
  return line;
}

/** The user name a failed login claimed (the name only, cut short; never a password or hash). */
function claimedUser(req: ApiRequest): string | undefined {
  const p = req.params;
  const name = p.authid ?? p.authusername ?? p.username ?? p.user;
  return name === undefined ? undefined : String(name).slice(0, 64);
}
