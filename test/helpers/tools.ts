/**
 * External tools the tests drive (sipp, sipsak, baresip, openssl, curl): found on PATH. A missing tool skips the
 * tests that need it, with the reason printed; under CI (CI=true) a missing tool is an error, so the run fails.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const IN_CI = process.env.CI === 'true';

const found = new Map<string, string | undefined>();
const reported = new Set<string>();

/** The full path of an executable `name` on PATH, or undefined. */
export function findTool(name: string): string | undefined {
  if (found.has(name)) return found.get(name);
  let hit: string | undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) {
        hit = p;
        break;
      }
    } catch {
      // not in this directory
    }
  }
  found.set(name, hit);
  return hit;
}

/** The path to spawn `name` with: its place on PATH, else the bare name (spawning it then fails with ENOENT). */
export function toolPath(name: string): string {
  return findTool(name) ?? name;
}

/**
 * False when `name` is on PATH; otherwise the reason to skip (printed once). Under CI=true a missing tool throws:
 * called inside a test it fails that test, called at module level (a `{ skip }` option) it fails the file.
 */
export function needTool(name: string): string | false {
  if (findTool(name)) return false;
  const reason = `${name} is not installed (not found on PATH)`;
  if (IN_CI) throw new Error(`${reason}: required when CI=true (.ci/run installs it)`);
  if (!reported.has(name)) {
    reported.add(name);
    console.log(`# skipping the tests that need ${name}: ${reason}`);
  }
  return reason;
}

/** In a test body: skips test `t` and returns true when a tool is missing (outside CI); throws under CI. */
export function skipWithout(t: { skip(message?: string): void }, ...names: string[]): boolean {
  for (const name of names) {
    const reason = needTool(name);
    if (reason) {
      t.skip(reason);
      return true;
    }
  }
  return false;
}
