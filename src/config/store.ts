/**
 * The configuration of a running server: the config file in the data dir (`voxswitch.conf`, `name=value`
 * lines, `#` comments) plus the `--set` overrides of this run. `reload()` re-reads the file.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions, isOptionName, ConfigError, type Options } from './options.js';

export const CONFIG_FILE = 'voxswitch.conf';

export function parseConfigText(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';') || t.startsWith('[')) return;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${where}:${i + 1}: expected name=value`);
    out[t.slice(0, eq).trim().toLowerCase()] = t.slice(eq + 1).trim();
  });
  return out;
}

export function parseSetArgs(sets: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${s}: expected NAME=VALUE`);
    const name = s.slice(0, eq).trim().toLowerCase();
    if (!isOptionName(name)) throw new ConfigError(`--set ${s}: unknown option "${name}"`);
    out[name] = s.slice(eq + 1);
  }
  return out;
}

export class ConfigStore {
  private current: Options;
  private listeners: Array<(o: Options) => void> = [];
  readonly file: string;

  constructor(
    readonly dataDir: string,
    private readonly overrides: Record<string, string>,
  ) {
    this.file = join(dataDir, CONFIG_FILE);
    this.current = this.read();
  }

  get options(): Options {
    return this.current;
  }

  get<K extends keyof Options>(name: K): Options[K] {
    return this.current[name];
  }

  /** Whether the option was given on the command line for this run. */
  isOverridden(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.overrides, name);
  }

  fileValues(): Record<string, string> {
    return existsSync(this.file) ? parseConfigText(readFileSync(this.file, 'utf8'), this.file) : {};
  }

  private read(): Options {
    return parseOptions({ ...this.fileValues(), ...this.overrides });
  }

  /** Re-reads the config file; on a bad file the running configuration stays and the error is thrown. */
  reload(): Options {
    this.current = this.read();
    for (const l of this.listeners) l(this.current);
    return this.current;
  }

  onChange(fn: (o: Options) => void): void {
    this.listeners.push(fn);
  }

  /** Persists options in the config file (replacing a line that sets the same option), then reloads. */
  persist(values: Record<string, string>): void {
    const text = existsSync(this.file)
      ? readFileSync(this.file, 'utf8')
      : '# voxswitch configuration: name=value (see docs/operations.md)\n';
    const pending = new Map(Object.entries(values));
    const lines = text.split('\n').map((line) => {
      const eq = line.indexOf('=');
      const name = eq > 0 && !line.trim().startsWith('#') ? line.slice(0, eq).trim().toLowerCase() : '';
      if (name && pending.has(name)) {
        const v = pending.get(name)!;
        pending.delete(name);
        return `${name}=${v}`;
      }
      return line;
    });
    if (lines[lines.length - 1] === '') lines.pop();
    for (const [k, v] of pending) lines.push(`${k}=${v}`);
    const text2 = lines.join('\n') + '\n';
    // a bad value throws before anything is written
    parseOptions({ ...parseConfigText(text2, this.file), ...this.overrides });
    writeFileSync(this.file, text2, { mode: 0o600 });
    this.reload();
  }
}
