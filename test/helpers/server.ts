/** Starts a real voxswitch server in-process on a temporary data dir and random port, for end-to-end tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startServer, type RunningServer } from '../../src/server.js';
import { pino } from 'pino';

export const ADMIN_PASSWORD = 'Adm1n-Secret-pw';
export const API_KEY = 'test-api-key-123';
export const SALT = 'serversalt42';

/** Options of every test server: API and SIP on random loopback ports (no TLS port), the test key and salt. */
export const TEST_OVERRIDES: Readonly<Record<string, string>> = {
  mainaport: '0',
  apibindaddr: '127.0.0.1',
  sipport: '0',
  siptlsport: '0',
  sipbindaddr: '127.0.0.1',
  apiv2key: API_KEY,
  apiv2md5salt: SALT,
};

export interface TestServer {
  srv: RunningServer;
  port: number;
  dataDir: string;
  url(path: string): string;
  stop(): Promise<void>;
}

export async function startTestServer(overrides: Record<string, string> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'voxswitch-test-'));
  process.env.VOXSWITCH_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const srv = await startServer({
    dataDir: dir,
    overrides: { ...TEST_OVERRIDES, ...overrides },
    announce: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const port = srv.services.listeners[0]!.port;
  return {
    srv,
    port,
    dataDir: dir,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    async stop() {
      await srv.stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function md5(s: string): string {
  return createHash('md5').update(s).digest('hex');
}

/** authmd5 for a user as the document defines it. */
export function authMd5(authid: string, pwd: string, salt: string, serverSalt = SALT): string {
  return md5('ck5Gp' + authid + pwd + serverSalt + salt);
}

let saltCounter = 0;
export function freshSalt(): string {
  return `s${Date.now().toString(36)}${(saltCounter++).toString(36)}`;
}
