/**
 * First start on an empty database: creates the server admin (password from VOXSWITCH_ADMIN_PASSWORD or random),
 * and an API key when none is configured. Secrets go to the config file (mode 0600), never to the log. The md5 salt
 * stays empty unless configured (stock clients hash with an empty one).
 * The credentials are printed only once the server is up (`announce`); a start that fails before that calls
 * `rollback`, which removes the admin again, so no account is left whose password was shown and then lost.
 */
import { randomToken } from '../domain/accounts/secrets.js';
import { UserType } from '../domain/accounts/types.js';
import type { Services } from '../services.js';

const NO_SALT = 'none (authmd5 uses an empty server salt; to use one, set apiv2md5salt=VALUE and in every client)';

export interface FirstStart {
  /** Prints the admin account, password and API key (once). */
  announce(): void;
  /** Removes the admin created by this start (the start failed). */
  rollback(): Promise<void>;
}

export async function firstStart(s: Services, print: (t: string) => void): Promise<FirstStart | undefined> {
  if ((await s.users.count()) > 0) return undefined;
  const persist: Record<string, string> = {};
  if (!s.config.get('apiv2key')) persist.apiv2key = randomToken(24);
  if (Object.keys(persist).length) s.config.persist(persist);
  const fromEnv = process.env.VOXSWITCH_ADMIN_PASSWORD;
  const password = fromEnv || randomToken(12);
  const admin = await s.users.create({ username: 'admin', password, type: UserType.srvadmin, name: 'Server admin' });
  s.log.info('first start: server admin account "admin" created');
  return {
    announce() {
      print(
        [
          '',
          '=== voxswitch first start ===',
          'server admin account: admin',
          `admin password:       ${fromEnv ? '(from VOXSWITCH_ADMIN_PASSWORD)' : password}`,
          `API key (apiv2key):   ${s.config.get('apiv2key')}`,
          `md5 salt:             ${s.config.get('apiv2md5salt') ? '(configured)' : NO_SALT}`,
          `These are shown once; the key is kept in ${s.config.file}.`,
          '',
        ].join('\n') + '\n',
      );
    },
    async rollback() {
      await s.storage.db.deleteFrom('tb_users').where('id', '=', admin.id).execute();
      s.users.clearCache();
      s.log.warn('first start failed: the server admin account was removed again (it is created on the next start)');
    },
  };
}
