/**
 * SIP gateways: the list with the trunk registration state, one form to add a gateway or change one (editgateway:
 * only the fields changed are sent, so a DNS-resolved host keeps its look-up), delete.
 */
import { run, type Me } from './api';
import { field, h, status, table } from './dom';
import { form, input, select } from './forms';

const TEXT = [
  ['name', 'Name'],
  ['host', 'Host (IP or name)'],
  ['port', 'Port (empty: 5060 or DNS)'],
  ['username', 'Digest user name'],
  ['password', 'Password'],
  ['prefix', 'Prefix served (empty: all)'],
  ['strip', 'Digits stripped'],
  ['addprefix', 'Prefix added'],
  ['priority', 'Priority (lower first)'],
  ['weight', 'Weight'],
  ['inbound_ip', 'Inbound addresses'],
  ['register_expires', 'Registration expiry (s)'],
  ['register_user', 'Registration user'],
  ['auth_user', 'Auth user'],
  ['realm', 'Realm'],
  ['register_contact', 'Contact user'],
] as const;
const FLAGS = [
  ['enabled', 'Enabled'],
  ['register', 'Register the trunk'],
] as const;
const SHOWN = ['id', 'name', 'host', 'port', 'transport', 'prefix', 'priority', 'weight', 'enabled', 'reg_status'];

type Row = Record<string, unknown>;

export function gatewaysPage(root: HTMLElement, _me: Me): void {
  const st = status();
  const list = h('div', { id: 'gateway-list' }, h('p', {}, 'loading…'));
  const inputs = new Map<string, HTMLInputElement>();
  for (const [k] of TEXT) {
    const num = ['port', 'strip', 'priority', 'weight', 'register_expires'].includes(k);
    inputs.set(k, input(k, k === 'password' ? { type: 'password' } : num ? { inputmode: 'numeric' } : {}));
  }
  const flags = new Map<string, HTMLInputElement>(
    FLAGS.map(([k]) => [k, h('input', { type: 'checkbox', name: k })] as const),
  );
  flags.get('enabled')!.checked = true;
  const transport = select('transport', [
    ['', 'udp (or by DNS)'],
    ['udp', 'udp'],
    ['tcp', 'tcp'],
    ['tls', 'tls'],
  ]);
  const dropPassword = h('input', { type: 'checkbox', name: 'nopassword' });
  const dropField = h('div', { class: 'field inline', hidden: true });
  dropField.append(h('label', { for: 'gw-nopassword' }, 'Remove the stored password'), dropPassword);
  dropPassword.id = 'gw-nopassword';
  const cancel = h('button', { type: 'button', hidden: true }, 'Cancel');
  let editing: Row | undefined;
  const title = h('h2', {}, 'Add a gateway');

  const values = (): Record<string, string> => {
    const v: Record<string, string> = {};
    for (const [k, el] of inputs) v[k] = el.value.trim();
    for (const [k, el] of flags) v[k] = el.checked ? '1' : '0';
    v.transport = transport.value;
    return v;
  };
  const load = (row: Row | undefined) => {
    editing = row;
    for (const [k, el] of inputs) el.value = row && k !== 'password' ? String(row[k] ?? '') : '';
    for (const [k, el] of flags) el.checked = row ? Number(row[k]) === 1 : k === 'enabled';
    transport.value = row ? String(row.transport ?? '') : '';
    inputs.get('password')!.placeholder = row?.password === 'set' ? 'unchanged' : '';
    dropPassword.checked = false;
    dropField.hidden = !row;
    cancel.hidden = !row;
    title.textContent = row ? `Edit gateway ${String(row.name)}` : 'Add a gateway';
    submit.textContent = row ? 'Save changes' : 'Add gateway';
    f.setAttribute('aria-label', row ? 'Edit gateway' : 'Add a gateway');
  };
  const refresh = async () => {
    const r = await run('gateways');
    if (!r.result.ok) return list.replaceChildren(h('p', { class: 'error' }, r.result.text));
    const rows = r.result.rows ?? [];
    const actions = (row: Row) =>
      h(
        'span',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            'aria-label': `Edit gateway ${String(row.name)}`,
            onclick: () => {
              load(row);
              inputs.get('name')!.focus();
            },
          },
          'Edit',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Delete gateway ${String(row.name)}`,
            onclick: () => void remove(row),
          },
          'Delete',
        ),
      );
    list.replaceChildren(
      h('p', {}, r.result.text),
      rows.length ? table(SHOWN, rows, 'Gateways', actions) : h('p', {}, 'no gateways'),
    );
  };
  const remove = async (row: Row) => {
    if (!confirm(`Delete gateway ${String(row.name)}?`)) return;
    const r = await run('delgateway', { name: String(row.id) }).catch((e: Error) => e);
    st.textContent = r instanceof Error ? `ERROR: ${r.message}` : `${r.result.ok ? 'OK' : 'ERROR'}: ${r.result.text}`;
    if (editing && editing.id === row.id) load(undefined);
    await refresh();
  };
  const save = async (): Promise<string> => {
    const v = values();
    let params: Record<string, string>;
    if (editing) {
      const old = editing;
      params = { id: String(old.id) };
      for (const [k, x] of Object.entries(v)) {
        if (k === 'password') continue;
        const before =
          k === 'enabled' || k === 'register' ? String(Number(old[k]) === 1 ? 1 : 0) : String(old[k] ?? '');
        if (x !== before) params[k] = x;
      }
      if (dropPassword.checked) params.password = '';
      else if (v.password) params.password = v.password;
    } else {
      params = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== ''));
    }
    const r = await run(editing ? 'editgateway' : 'addgateway', params);
    if (r.result.ok) load(undefined);
    await refresh();
    return `${r.result.ok ? 'OK' : 'ERROR'}: ${r.result.text}`;
  };
  const f = form(
    'Add a gateway',
    [
      ...TEXT.map(([k, label]) => field(label, inputs.get(k)!)),
      field('Transport', transport),
      ...FLAGS.map(([k, label]) => {
        const el = field(label, flags.get(k)!);
        el.classList.add('inline');
        return el;
      }),
      dropField,
    ],
    'Add gateway',
    save,
    [cancel],
  );
  const submit = f.querySelector('button[type=submit]') as HTMLButtonElement;
  f.querySelector('h2')!.replaceWith(title);
  cancel.addEventListener('click', () => load(undefined));
  root.append(st, list, f);
  void refresh();
}
