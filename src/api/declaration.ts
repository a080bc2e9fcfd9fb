/**
 * What a command declaration says about itself, apart from its handler: names, parameters, description and
 * the default authentication levels. The tb_api rules (auth/rules.ts) and `help` read only this part, so
 * neither needs the handler's CommandContext.
 */

/**
 * req_user levels of the document: 0 default, 2 disabled, 4 srvadmin, 6 admins, 8 owners/resellers,
 * 10 support, 12 all, 14 public.
 */
export type Level = 0 | 2 | 4 | 6 | 8 | 10 | 12 | 14;
/** req_user_mode: 0 default (apiv2auth), 2 user+pwd or pin, 4 user or pwd or pin, 6 user+pwd only. */
export type UserMode = 0 | 2 | 4 | 6;

export interface CommandDecl {
  name: string;
  aliases?: string[];
  /** Parameter names in the documented order (param1…paramN map onto these). */
  params: string[];
  /**
   * Other names a declared parameter is read from when it is not given (nor an alias of it), in order: the rule
   * for a parameter the vendor's examples pass under another name (rating's number in `anum`, charge's PIN in
   * `anum`). A value under the declared name always wins.
   */
  fallbacks?: Record<string, string[]>;
  description: string;
  /** Default req_user. */
  level: Level;
  /** Default req_key (1: authkey required unless the source is trusted). */
  reqKey?: 0 | 1;
  /** Default req_ip (1: only local/LAN/apiv2ipauth addresses). */
  reqIp?: 0 | 1;
  /** Default req_user_mode. */
  userMode?: UserMode;
  /** Why it is unavailable (shown in the ERROR) when there is no handler. */
  unavailable?: string;
}
