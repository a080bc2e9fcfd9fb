/** CDRs with filters, and their CSV export. */
import { call, type Me } from './api';
import { field, h, status, table } from './dom';

export function cdrPage(root: HTMLElement, _me: Me): void {
  const day = 86_400_000;
  const from = h('input', {
    name: 'from',
    type: 'date',
    value: new Date(Date.now() - 7 * day).toISOString().slice(0, 10),
  });
  const to = h('input', { name: 'to', type: 'date', value: new Date(Date.now() + day).toISOString().slice(0, 10) });
  const caller = h('input', { name: 'caller', autocomplete: 'off' });
  const callee = h('input', { name: 'callee', autocomplete: 'off', inputmode: 'tel' });
  const st = status();
  const out = h('div', {});
  const csv = h('a', { class: 'button', download: 'cdrs.csv' }, 'Export CSV');
  const query = () =>
    new URLSearchParams({ from: from.value, to: to.value, caller: caller.value, callee: callee.value }).toString();
  const load = () => {
    csv.setAttribute('href', `/console/api/cdrs.csv?${query()}`);
    st.textContent = 'loading…';
    call<{ columns: string[]; rows: Array<Record<string, unknown>> }>(`cdrs?${query()}`).then(
      (r) => {
        st.textContent = `${r.rows.length} CDRs (at most 500 shown; the export has all)`;
        out.replaceChildren(table(r.columns, r.rows, 'CDRs'));
      },
      (e: Error) => (st.textContent = e.message),
    );
  };
  const f = h(
    'form',
    { class: 'filters', 'aria-label': 'CDR filters' },
    field('From', from),
    field('To', to),
    field('Caller starts with', caller),
    field('Callee starts with', callee),
    h('button', { type: 'submit' }, 'Show'),
    csv,
  );
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  root.append(f, st, out);
  load();
}
