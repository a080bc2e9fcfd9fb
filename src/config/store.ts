/**
 * The configuration of a running server: the config file in the data dir (`voxswitch.conf`, `name=value`
 * lines, `#` comments) plus the `--set` overrides of this run. `reload()` re-reads the file.
 */
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions, isOptionName, sectionOf, ConfigError, type Options } from './options.js';
import { setIniValues } from './inifile.js';

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
    this.writeValues(Object.entries(values).map(([name, value]) => ({ name, value })));
    this.reload();
  }

  /**
   * Writes options into the config file, each under its `[section]` (a line that already sets it is replaced where
   * it stands). The whole file is validated first, as a reload would read it: a bad value throws ConfigError and
   * nothing is written. The write is atomic (a temporary file renamed over the old one). The running configuration
   * does not change until `reload()`.
   */
  writeValues(values: Array<{ name: string; value: string }>): void {
    const text = existsSync(this.file)
      ? readFileSync(this.file, 'utf8')
      : '# voxswitch configuration: name=value (see docs/operations.md)\n';
    const entries = values.map(({ name, value }) => {
      if (!isOptionName(name)) throw new ConfigError(`unknown option "${name}"`);
      return { section: sectionOf(name), name, value };
    });
    const next = setIniValues(text, entries);
    parseOptions({ ...parseConfigText(next, this.file), ...this.overrides });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, next, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
