/**
 * The tb_api rules (server admin): the rows, one form to add or change a rule (setapirule, checked by the server as
 * the loader checks it), delete, and apireload to apply what was saved.
 */
import { call, run, type Command, type Me } from './api';
import { field, h, status, table } from './dom';
import { answer, form, input, select } from './forms';

const DEFAULT: [string, string] = ['', 'default (the command’s own)'];
const ZERO_ONE: Array<[string, string]> = [DEFAULT, ['1', '1: required'], ['0', '0: not required']];
const LEVELS: Array<[string, string]> = [
  DEFAULT,
  ['2', '2: disabled'],
  ['4', '4: server admin'],
  ['6', '6: admins'],
  ['8', '8: owners and resellers'],
  ['10', '10: support'],
  ['12', '12: all users'],
  ['14', '14: public'],
];
const MODES: Array<[string, string]> = [
  DEFAULT,
  ['2', '2: user and password, or PIN'],
  ['4', '4: user, password or PIN'],
  ['6', '6: user and password only'],
];
const COLUMNS = ['fname', 'req_key', 'req_ip', 'req_user', 'req_user_mode', 'customsql'];

export function apiRulesPage(root: HTMLElement, _me: Me): void {
  const st = status();
  const list = h('div', { id: 'api-rules' }, h('p', {}, 'loading…'));
  const names = h('datalist', { id: 'api-names' });
  const fname = input('fname', { list: 'api-names' });
  const sel = {
    req_key: select('req_key', ZERO_ONE),
    req_ip: select('req_ip', ZERO_ONE),
    req_user: select('req_user', LEVELS),
    req_user_mode: select('req_user_mode', MODES),
  };
  const sql = h('textarea', { name: 'customsql', rows: '3', spellcheck: 'false' });
  const load = (row: Record<string, unknown>) => {
    fname.value = String(row.fname ?? '');
    for (const [k, el] of Object.entries(sel)) el.value = String(row[k] ?? '');
    sql.value = String(row.customsql ?? '');
    fname.focus();
  };
  const refresh = async () => {
    const r = await run('apirules');
    if (!r.result.ok) return list.replaceChildren(h('p', { class: 'error' }, r.result.text));
    const rows = r.result.rows ?? [];
    const actions = (row: Record<string, unknown>) =>
      h(
        'span',
        { class: 'actions' },
        h(
          'button',
          { type: 'button', 'aria-label': `Edit rule ${String(row.fname)}`, onclick: () => load(row) },
          'Edit',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Delete rule ${String(row.fname)}`,
            onclick: () => void remove(String(row.fname)),
          },
          'Delete',
        ),
      );
    list.replaceChildren(
      h('p', {}, r.result.text),
      rows.length ? table(COLUMNS, rows, 'tb_api rules', actions) : h('p', {}, 'no rules: every API has its defaults'),
    );
  };
  const remove = async (name: string) => {
    if (!confirm(`Delete the rule of ${name}?`)) return;
    st.textContent = await answer('delapirule', { fname: name }).catch((e: Error) => `ERROR: ${e.message}`);
    await refresh();
  };
  const apply = h('button', { type: 'button' }, 'Apply the rules (apireload)');
  apply.addEventListener('click', () => {
    st.textContent = '…';
    void answer('apireload', {}).then(
      (t) => (st.textContent = t),
      (e: Error) => (st.textContent = `ERROR: ${e.message}`),
    );
  });
  root.append(
    names,
    h('p', { class: 'hint' }, 'Saved rules apply after apireload (as rows written with SQL do).'),
    h('div', { class: 'toolbar' }, apply, st),
    list,
    form(
      'Add or change a rule',
      [
        field('API name', fname),
        field('Authkey (req_key)', sel.req_key),
        field('Address check (req_ip)', sel.req_ip),
        field('Who may call (req_user)', sel.req_user),
        field('Authentication (req_user_mode)', sel.req_user_mode),
        field('Custom SQL (a new API)', sql),
      ],
      'Save rule',
      async () => {
        const params: Record<string, string> = { fname: fname.value, customsql: sql.value };
        for (const [k, el] of Object.entries(sel)) params[k] = el.value;
        const t = await answer('setapirule', params);
        await refresh();
        return t;
      },
    ),
  );
  void call<{ commands: Command[] }>('commands').then((r) =>
    names.replaceChildren(...r.commands.map((c) => h('option', { value: c.name }))),
  );
  void refresh();
}
