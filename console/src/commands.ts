/** The commands this user may call (GET /console/api/commands), fetched once per page load. */
import { call, type Command } from './api';

let list: Promise<Command[]> | undefined;
export function commands(): Promise<Command[]> {
  list ??= call<{ commands: Command[] }>('commands').then((r) => r.commands);
  return list;
}

export function findCommand(all: Command[], name: string): Command | undefined {
  const n = name.trim().toLowerCase();
  return all.find((c) => c.name === n || (c.aliases ?? []).includes(n));
}

/** "name=value" lines → parameters (a line without "=" is skipped). */
export function parseParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}
