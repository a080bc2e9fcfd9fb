/**
 * Authentication and authorisation of one API request, as the document's "Authentication" section describes:
 * IP rules (req_ip), the API key (req_key), the user (authid with authpwd, or authmd5+authsalt, or a PIN/DID,
 * by req_user_mode) and the level (req_user). A failure never tells whether the user exists.
 */
import type { Options } from '../../config/options.js';
import { md5hex, safeEqual } from '../../domain/accounts/secrets.js';
import { rankOf } from '../../domain/accounts/types.js';
import type { UserService, AuthUser, User } from '../../domain/accounts/users.js';
import type { Caller } from '../context.js';
import type { Rule } from './rules.js';
import type { ApiRequest } from '../types.js';
import { IpSet, isLoopback, isPrivate } from '../../domain/security/ip.js';
import type { SaltStore } from './salts.js';

export type AuthOutcome =
  | { ok: true; caller: Caller }
  | { ok: false; message: string; legacyStatus: number; /** counts towards an IP ban */ failure: boolean };

const AUTH_FAILED = 'authentication failed';
const MD5_NEEDS_SALT =
  'authmd5 needs authsalt (a new random value with each request); an authmd5 without it is a static token ' +
  'anyone who sees it can replay, accepted only when the operator sets apimd5nosalt=true';
const DUMMY_PASSWORD = 'x'.repeat(24);

export class Authenticator {
  private trusted = new IpSet([]);
  private ipauth = new IpSet([]);
  private opts!: Options;
  /** Trust of an address by the IP rules alone, memoised until the configuration changes. */
  private trustMemo = new Map<string, boolean>();

  constructor(
    private readonly users: UserService,
    private readonly salts: SaltStore,
    private readonly adminUser: () => User | undefined,
    options: Options,
  ) {
    this.configure(options);
  }

  configure(o: Options): void {
    this.opts = o;
    this.trusted = new IpSet(o.trustediplist);
    this.ipauth = new IpSet(o.apiv2ipauth);
    this.trustMemo.clear();
  }

  /** Local, LAN (unless trustlanip=false) or trustediplist — and not a web page. */
  isTrustedSource(req: ApiRequest): boolean {
    if (req.source.browser) return false;
    const ip = req.source.ip;
    // a datagram's source address can be forged from the LAN: over UDP (and SIP) only loopback is trusted
    if (req.source.transport === 'udp' || req.source.transport === 'sip') return isLoopback(ip);
    // the API over SMS is never a trusted source: the sender number proves nothing
    if (req.source.transport === 'sms') return false;
    let t = this.trustMemo.get(ip);
    if (t === undefined) {
      t = isLoopback(ip) || (this.opts.trustlanip && isPrivate(ip)) || this.trusted.has(ip);
      if (this.trustMemo.size > 10_000) this.trustMemo.clear();
      this.trustMemo.set(ip, t);
    }
    return t;
  }

  /** req_ip=1: a trusted source, or an address in apiv2ipauth (not from a web page). */
  ipRuleAllows(req: ApiRequest): boolean {
    if (req.source.transport === 'console' || this.isTrustedSource(req)) return true;
    return this.ipauth.has(req.source.ip) && !req.source.browser;
  }

  /** An address the operator listed (apiv2ipauth, trustediplist): what a req_ip=1 rule needs from the web console. */
  listedForConsole(ip: string): boolean {
    return this.ipauth.has(ip) || this.trusted.has(ip);
  }

  async authenticate(req: ApiRequest, rule: Rule): Promise<AuthOutcome> {
    const p = req.params;
    const trustedIp = req.source.transport === 'console' || this.isTrustedSource(req);
    const deny = (message: string, legacyStatus = 403, failure = false): AuthOutcome => ({
      ok: false,
      message,
      legacyStatus,
      failure,
    });

    if (rule.reqUser === 2) return deny('this API is disabled', 406);
    if (rule.reqIp === 1 && !this.ipRuleAllows(req)) {
      return deny(`this API is not allowed from ${req.source.ip} (add it to apiv2ipauth)`);
    }

    // API key: required unless the source is trusted; a wrong key is refused even from a trusted source
    const keys = [this.opts.apiv2key, this.opts.httpapikey].filter(Boolean);
    const given = p.authkey ?? p.key ?? '';
    if (keys.length && given && !keys.some((k) => safeEqual(k, given))) return deny('wrong authkey', 403, true);
    if (rule.reqKey === 1 && !trustedIp && keys.length && !given) return deny('authkey required');

    // user
    const authid = p.authid ?? '';
    if (authid) {
      const r = await this.verifyUser(authid, req, rule, trustedIp);
      if (!r.ok) return r;
      if (rule.reqUser !== 14 && rankOf(r.caller.user!.type) > rule.reqUser) {
        return deny('this API is not allowed for your user type');
      }
      return r;
    }
    if (rule.reqUser === 14) return { ok: true, caller: { via: 'none', trustedIp } };
    if (trustedIp) {
      const admin = this.adminUser();
      if (!admin) return deny('no server admin account exists');
      return {
        ok: true,
        caller: { user: admin, via: req.source.transport === 'console' ? 'console' : 'trusted-ip', trustedIp },
      };
    }
    return deny('authentication required: authid with authpwd or authmd5+authsalt');
  }

  private async verifyUser(authid: string, req: ApiRequest, rule: Rule, trustedIp: boolean): Promise<AuthOutcome> {
    const p = req.params;
    const fail: AuthOutcome = { ok: false, message: AUTH_FAILED, legacyStatus: 403, failure: true };
    const user: AuthUser | null = await this.users.forAuth(authid);
    const password = user?.password ?? DUMMY_PASSWORD;
    const mode = rule.userMode;
    let good = false;
    let via: Caller['via'] = 'none';

    const pwd = p.authpwd ?? p.password;
    if (p.authmd5 !== undefined) {
      const salt = p.authsalt ?? '';
      // refused before the hash is checked, so the answer tells nothing about the account
      if (!salt && !this.opts.apimd5nosalt)
        return { ok: false, message: MD5_NEEDS_SALT, legacyStatus: 403, failure: false };
      const expect = md5hex('ck5Gp' + authid + password + this.opts.apiv2md5salt + salt);
      good = safeEqual(expect, p.authmd5.toLowerCase());
      if (good && salt) {
        const fresh = await this.salts.use(authid, salt).catch((e: unknown) => e as Error);
        if (fresh instanceof Error)
          return {
            ok: false,
            message: `authsalt cannot be checked for replay now (${fresh.message}); try again later`,
            legacyStatus: 412,
            failure: false,
          };
        if (!fresh)
          return {
            ok: false,
            message: 'authsalt already used: send a new random salt with each request',
            legacyStatus: 403,
            failure: true,
          };
      }
      via = 'md5';
    } else if (pwd !== undefined) {
      good = safeEqual(password, pwd);
      via = 'password';
      if (!good && mode !== 6 && user?.pin) {
        good = safeEqual(user.pin, pwd);
        via = 'pin';
      }
    } else if (user && mode !== 6 && user.pin && safeEqual(user.pin, authid)) {
      good = true; // a PIN authenticates alone (modes 2 and 4)
      via = 'pin';
    } else if (user && (mode === 4 || trustedIp)) {
      good = true; // "less" mode, or a trusted source acting for the named user
      via = trustedIp ? 'trusted-ip' : 'username';
    }
    if (!good || !user) return fail;
    if (!user.enabled) return fail;
    const { password: _drop, ...pub } = user;
    return { ok: true, caller: { user: pub, via, trustedIp } };
  }
}
