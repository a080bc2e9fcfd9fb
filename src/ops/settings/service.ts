/**
 * The document's ini-file and settings-in-database model on voxswitch's config file:
 * - the ini file is the config file (`voxswitch.conf` in the data dir), `[section]` headers by option group;
 * - the settings table (tb_settings) holds options as the database sees them: `loadinifiles` copies the file into
 *   it, an admin changes rows there (the `db` command, the console), and `savesettings`/`saveinifiles` write the
 *   rows not yet saved into the file;
 * - every write is validated by the option schema as a reload would read the whole file (a bad value: nothing is
 *   written), and the running configuration changes only with `reload`.
 * Secret options (keys, passwords) are never copied into the table and are shown masked.
 */
import type { Logger } from 'pino';
import type { ConfigStore } from '../../config/store.js';
import { ConfigError, isOptionName, optionSchemas, optionSections, sectionOf } from '../../config/options.js';
import type { OptionName, SectionName } from '../../config/options.js';
import { SECRET_OPTIONS, shownValue } from '../../config/mask.js';
import { CONFIG_FILE } from '../../config/store.js';
import type { Storage } from '../../storage/db.js';
import { DomainError } from '../../domain/errors.js';

export interface SettingsDeps {
  config: ConfigStore;
  storage: Storage;
  log: Logger;
}

export interface IniValue {
  section: SectionName;
  name: OptionName;
  /** The value as the file holds it (masked for a secret). */
  value: string;
  default: string;
  /** The value this process runs with (masked for a secret). */
  running: string;
}

export interface SaveResult {
  file: string;
  written: string[];
}

export interface LoadResult {
  file: string;
  loaded: string[];
  /** Rows not yet saved that the file's values replaced. */
  discarded: string[];
  /** Secret options of the file, which stay in the file only. */
  secrets: string[];
}

const SECTION_NAMES = Object.keys(optionSections) as SectionName[];

export class SettingsService {
  constructor(private readonly d: SettingsDeps) {}

  /** The ini file a `file` parameter names: only the config file is one here. */
  fileOf(file: string | undefined): string {
    const f = (file ?? '').trim();
    if (f === '' || f.toLowerCase() === CONFIG_FILE) return CONFIG_FILE;
    throw new DomainError(
      `file "${f}": the only ini file of this server is ${CONFIG_FILE} in the data dir (leave file empty)`,
    );
  }

  /** The option a `key` names, checked against a `section` when one is given. */
  optionOf(section: string | undefined, key: string | undefined): OptionName {
    const name = (key ?? '').trim().toLowerCase();
    if (!name) throw new DomainError('key: missing option name');
    if (!isOptionName(name)) throw new DomainError(`key "${name}": unknown option (showcfg lists the options)`);
    const want = (section ?? '').trim().toLowerCase();
    if (want && want !== sectionOf(name)) {
      throw new DomainError(`option "${name}" is in section [${sectionOf(name)}], not [${want}]`);
    }
    return name;
  }

  /** `module` of saveinifiles/loadinifiles: one section, or every section for '' / all. */
  modulesOf(module: string | undefined): SectionName[] {
    const m = (module ?? '').trim().toLowerCase();
    if (m === '' || m === 'all' || m === '*') return SECTION_NAMES;
    if ((SECTION_NAMES as string[]).includes(m)) return [m as SectionName];
    throw new DomainError(`module "${m}": unknown section (one of ${SECTION_NAMES.join(', ')}, or all)`);
  }

  getIni(section: string | undefined, key: string | undefined, file: string | undefined): IniValue {
    const f = this.fileOf(file);
    const name = this.optionOf(section, key);
    const inFile = this.fileValues()[name];
    const spec = optionSchemas[name];
    if (inFile === undefined) {
      throw new DomainError(
        `option "${name}" is not set in ${f} (its default is "${spec.def}"; showcfg shows the running value)`,
        'notfound',
      );
    }
    return {
      section: sectionOf(name),
      name,
      value: shownValue(name, inFile),
      default: spec.def,
      running: shownValue(name, this.d.config.options[name]),
    };
  }

  /** Writes one option into the file (validated with the whole file) and records it in the table as saved. */
  async setIni(
    section: string | undefined,
    key: string | undefined,
    value: string | undefined,
    file: string | undefined,
    by: string,
  ): Promise<{ section: SectionName; name: OptionName; file: string }> {
    const f = this.fileOf(file);
    const name = this.optionOf(section, key);
    if (value === undefined) throw new DomainError('value: missing (an empty value is value=)');
    this.write([{ name, value }]);
    if (SECRET_OPTIONS.has(name)) await this.d.storage.db.deleteFrom('tb_settings').where('name', '=', name).execute();
    else await this.recordSaved(name, value, by);
    this.d.log.info({ by, option: name, file: f }, 'setini wrote an option');
    return { section: sectionOf(name), name, file: f };
  }

  /** Copies the file's options of the modules into the table (saved), replacing the modules' rows. */
  async loadIniFiles(module: string | undefined, file: string | undefined, by: string): Promise<LoadResult> {
    const f = this.fileOf(file);
    const modules = new Set<string>(this.modulesOf(module));
    const values = this.fileValues();
    const db = this.d.storage.db;
    const rows = await db.selectFrom('tb_settings').select(['name', 'module', 'saved']).execute();
    const inModules = rows.filter((r) => modules.has(isOptionName(r.name) ? sectionOf(r.name) : r.module));
    const loaded: Array<{ name: string; value: string }> = [];
    const secrets: string[] = [];
    for (const [name, value] of Object.entries(values)) {
      if (!isOptionName(name) || !modules.has(sectionOf(name))) continue;
      if (SECRET_OPTIONS.has(name)) secrets.push(name);
      else loaded.push({ name, value });
    }
    const discarded = inModules.filter((r) => r.saved === 0).map((r) => r.name);
    await db.transaction().execute(async (trx) => {
      const names = inModules.map((r) => r.name);
      if (names.length) await trx.deleteFrom('tb_settings').where('name', 'in', names).execute();
      const now = Date.now();
      for (const r of loaded) {
        await trx
          .insertInto('tb_settings')
          .values({
            name: r.name,
            module: sectionOf(r.name as OptionName),
            value: r.value,
            saved: 1,
            updated_at: now,
            updated_by: by,
          })
          .execute();
      }
    });
    this.d.log.info({ by, modules: [...modules], loaded: loaded.length, discarded }, 'loadinifiles loaded options');
    return { file: f, loaded: loaded.map((r) => r.name), discarded, secrets };
  }

  /**
   * Writes the table's rows of the modules into the file: the rows not yet saved (`onlyUnsaved`), or all of them.
   * One bad row (unknown option, a value the schema refuses) and nothing is written, every row stays as it was.
   */
  async saveIniFiles(
    module: string | undefined,
    file: string | undefined,
    onlyUnsaved: boolean,
    by: string,
  ): Promise<SaveResult> {
    const f = this.fileOf(file);
    const modules = new Set<string>(this.modulesOf(module));
    const db = this.d.storage.db;
    let q = db.selectFrom('tb_settings').select(['name', 'module', 'value', 'saved']);
    if (onlyUnsaved) q = q.where('saved', '=', 0);
    const rows = (await q.orderBy('name').execute()).filter((r) =>
      modules.has(isOptionName(r.name) ? sectionOf(r.name) : r.module.toLowerCase()),
    );
    if (!rows.length) return { file: f, written: [] };
    for (const r of rows) {
      if (!isOptionName(r.name)) {
        throw new DomainError(`tb_settings row "${r.name}": unknown option; nothing written (fix or delete the row)`);
      }
    }
    this.write(rows.map((r) => ({ name: r.name, value: r.value })));
    // a row changed again since it was read stays unsaved; a secret leaves the table once it is in the file
    for (const r of rows) {
      if (SECRET_OPTIONS.has(r.name)) {
        await db.deleteFrom('tb_settings').where('name', '=', r.name).where('value', '=', r.value).execute();
        continue;
      }
      await db
        .updateTable('tb_settings')
        .set({ saved: 1, module: sectionOf(r.name as OptionName) })
        .where('name', '=', r.name)
        .where('value', '=', r.value)
        .execute();
    }
    this.d.log.info({ by, file: f, options: rows.map((r) => r.name) }, 'settings written to the config file');
    return { file: f, written: rows.map((r) => r.name) };
  }

  private fileValues(): Record<string, string> {
    try {
      return this.d.config.fileValues();
    } catch (e) {
      throw new DomainError(`${CONFIG_FILE} cannot be read: ${(e as Error).message}`, 'config', { cause: e });
    }
  }

  private write(values: Array<{ name: string; value: string }>): void {
    try {
      this.d.config.writeValues(values);
    } catch (e) {
      if (e instanceof ConfigError) throw new DomainError(`nothing written: ${e.message.split('\n').join('; ')}`);
      throw e;
    }
  }

  /** Records one option as the file now holds it (a saved row). */
  private async recordSaved(name: OptionName, value: string, by: string): Promise<void> {
    const row = { module: sectionOf(name), value, saved: 1, updated_at: Date.now(), updated_by: by };
    await this.d.storage.db
      .insertInto('tb_settings')
      .values({ name, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row))
      .execute();
  }
}
