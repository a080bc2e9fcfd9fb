/**
 * A test host with a non-loopback address: a network namespace joined to this host by a veth pair on a /30 of its
 * own (10.SUBNET.N.1 here, 10.SUBNET.N.2 inside). Loopback is trusted and never banned, so tests of bans and of
 * address checks need a peer like this. Needs root and iproute2: `netnsMissing` gives the reason when they are
 * absent (the caller skips with it, or throws under CI=true).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findTool } from './tools.js';

const run = promisify(execFile);
const ip = (...args: string[]) => run('ip', args, { timeout: 10_000 });

export interface NetnsHost {
  /** This host's end of the pair: bind the server here. */
  host: string;
  /** The namespace's address: requests from it come from a non-loopback source. */
  peer: string;
  /** Runs a program inside the namespace; a failing exit answers its output instead of throwing. */
  exec(cmd: string, args: string[], timeout?: number): Promise<{ stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

/** Why network namespaces cannot be made here ('' when they can), with the other tools the test runs. */
export function netnsMissing(tools: string[] = []): string {
  if (process.getuid?.() !== 0) return 'not running as root (network namespaces need it)';
  return ['ip', ...tools].filter((tool) => !findTool(tool)).map((tool) => `${tool} is not installed`)[0] ?? '';
}

/** Makes the namespace and its veth pair (names from `tag`, at most 4 letters, and the process id). */
export async function makeNetnsHost(tag: string, subnet: number): Promise<NetnsHost> {
  const n = 1 + ((process.pid + subnet) % 250);
  const ns = `vx${tag}${process.pid}`;
  const vh = `vx${tag}h${process.pid % 100000}`;
  const vn = `vx${tag}n${process.pid % 100000}`;
  const host = `10.${subnet}.${n}.1`;
  const peer = `10.${subnet}.${n}.2`;
  const remove = async () => {
    await ip('netns', 'del', ns).catch(() => undefined);
    await ip('link', 'del', vh).catch(() => undefined);
  };
  await remove();
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', vh, 'type', 'veth', 'peer', 'name', vn);
    await ip('link', 'set', vn, 'netns', ns);
    await ip('addr', 'add', `${host}/30`, 'dev', vh);
    await ip('link', 'set', vh, 'up');
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${peer}/30`, 'dev', vn);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', vn, 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  } catch (e) {
    await remove();
    throw e;
  }
  return {
    host,
    peer,
    exec: (cmd, args, timeout = 60_000) =>
      run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout }).catch((e: { stdout?: string; stderr?: string }) => ({
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      })),
    remove,
  };
}
