/** Management through the API commands: users (create, credit with a reason, edit a field, disable), prefix search. */
import { importTariffs, run, type Me } from './api';
import { field, h, table } from './dom';
import { answer as text, form, input } from './forms';

async function userId(username: string): Promise<string> {
  const r = await run('getfield', {
    table: 'tb_users',
    retfieldname: 'id',
    filterfieldname: 'username',
    filterfieldvalue: username,
  });
  const id = r.result.fields?.value ?? r.result.text;
  if (!r.result.ok || !/^\d+$/.test(String(id).trim())) throw new Error(`no user ${username}: ${r.result.text}`);
  return String(id).trim();
}

export function managePage(root: HTMLElement, _me: Me): void {
  const nu = { user: input('u_username'), pwd: input('u_password', { type: 'password' }), name: input('u_name') };
  const type = h(
    'select',
    { name: 'u_type' },
    ...['enduser', 'support', 'reseller', 'owner', 'admin'].map((t) => h('option', { value: t }, t)),
  );
  const cr = { user: input('username'), amount: input('credit', { inputmode: 'decimal' }), reason: input('reason') };
  const ed = { user: input('username'), field: input('fieldname'), value: input('fieldvalue') };
  const dis = input('username');
  const prefix = input('bnum', { inputmode: 'tel' });
  const rates = h('div', { 'aria-live': 'polite' });
  const csvFile = input('tariffcsv', { type: 'file', accept: '.csv,text/csv' });
  const plan = input('plan', { value: 'default' });
  const replace = h('input', { type: 'checkbox', name: 'replace' });
  const bar = h('progress', { max: '100', value: '0', 'aria-label': 'Import progress' });
  root.append(
    form(
      'New user',
      [field('User name', nu.user), field('Password', nu.pwd), field('Full name', nu.name), field('Type', type)],
      'Create',
      () =>
        text('newuser', {
          u_username: nu.user.value,
          u_password: nu.pwd.value,
          u_name: nu.name.value,
          u_type: type.value,
        }),
    ),
    form(
      'Credit (through the ledger)',
      [field('User name', cr.user), field('Amount (negative to correct)', cr.amount), field('Reason', cr.reason)],
      'Add credit',
      () => text('addcredit', { username: cr.user.value, credit: cr.amount.value, reason: cr.reason.value }),
    ),
    form(
      'Edit a user field (setfield)',
      [field('User name', ed.user), field('Field', ed.field), field('Value', ed.value)],
      'Save',
      async () =>
        text('setfield', {
          table: 'tb_users',
          fieldname: ed.field.value,
          fieldvalue: ed.value.value,
          rowid: await userId(ed.user.value),
        }),
    ),
    form('Disable a user', [field('User name', dis)], 'Disable', async () =>
      text('setfield', { table: 'tb_users', fieldname: 'enabled', fieldvalue: '0', rowid: await userId(dis.value) }),
    ),
    form(
      'Import a tariff CSV',
      [field('CSV file', csvFile), field('Tariff plan', plan), field('Replace the whole plan', replace), bar],
      'Import',
      async () => {
        const file = csvFile.files?.[0];
        if (!file) return 'ERROR: choose a CSV file';
        bar.value = 0;
        const r = await importTariffs({ csv: await file.text(), plan: plan.value, replace: replace.checked }, (p) => {
          bar.value = Math.floor((p.phase === 'write' ? 50 : 0) + (p.done * 50) / Math.max(1, p.total) || 0);
        });
        bar.value = 100;
        if (r.ok) return `OK: imported ${r.imported} rates into plan ${r.plan}`;
        const first = r.errors.slice(0, 5).map((e) => `line ${e.line}: ${e.reason}`);
        return `ERROR: nothing imported (${r.errors.length} bad rows) ${first.join('; ')}`;
      },
    ),
    form('Prefix search (rating)', [field('Number or prefix', prefix)], 'Search', async () => {
      const r = await run('rating', { bnum: prefix.value });
      const rows = r.result.rows ?? (r.result.fields ? [r.result.fields] : []);
      rates.replaceChildren(rows.length ? table(Object.keys(rows[0]!), rows, 'Rates') : h('p', {}, r.result.text));
      return `${r.result.ok ? 'OK' : 'ERROR'}: ${r.result.text}`;
    }),
    rates,
  );
}
