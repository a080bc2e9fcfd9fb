/**
 * Edits the text of the config file (`name=value` lines under optional `[section]` headers) while keeping its
 * comments, order and the lines it does not touch. The parser (store.ts `parseConfigText`) reads the headers as
 * comments: an option's name is unique across sections, so a header only groups lines for the reader.
 */
import { ConfigError } from './options.js';

export interface IniEntry {
  section: string;
  name: string;
  value: string;
}

/** A value that would break the line format (a line break or NUL would add a line of its own) is refused. */
export function checkIniValue(name: string, value: string): void {
  if (/[\r\n\0]/.test(value)) throw new ConfigError(`option "${name}": a value may not hold a line break or NUL`);
}

function lineName(line: string): string {
  const t = line.trim();
  if (!t || t.startsWith('#') || t.startsWith(';') || t.startsWith('[')) return '';
  const eq = t.indexOf('=');
  return eq > 0 ? t.slice(0, eq).trim().toLowerCase() : '';
}

function headerOf(line: string): string | undefined {
  const m = /^\s*\[([^\]]*)\]\s*$/.exec(line);
  return m ? m[1]!.trim().toLowerCase() : undefined;
}

/**
 * The text with each entry set: a line that already sets the option is replaced where it stands; a new option goes
 * at the end of its `[section]` (the header is added at the end of the file when the file has none).
 */
export function setIniValues(text: string, entries: IniEntry[]): string {
  for (const e of entries) checkIniValue(e.name, e.value);
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const pending = new Map(entries.map((e) => [e.name, e]));
  for (let i = 0; i < lines.length; i++) {
    const e = pending.get(lineName(lines[i]!));
    if (!e) continue;
    lines[i] = `${e.name}=${e.value}`;
    pending.delete(e.name);
  }
  for (const e of pending.values()) {
    const section = e.section.toLowerCase();
    const start = lines.findIndex((l) => headerOf(l) === section);
    if (start < 0) {
      if (lines.length && lines[lines.length - 1]!.trim() !== '') lines.push('');
      lines.push(`[${section}]`, `${e.name}=${e.value}`);
      continue;
    }
    // after the section's last option line (before the blank lines and comments that lead into the next header)
    let end = start + 1;
    for (let j = start + 1; j < lines.length && headerOf(lines[j]!) === undefined; j++)
      if (lineName(lines[j]!)) end = j + 1;
    lines.splice(end, 0, `${e.name}=${e.value}`);
  }
  return lines.join('\n') + '\n';
}
