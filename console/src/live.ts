/** Live views over server-sent events: registrations, live calls (with disccall), bans and gateways. */
import { run, type ApiResult, type Me } from './api';
import { h, status, table } from './dom';

const VIEWS = [
  { id: 'registrations', title: 'Registered phones' },
  { id: 'calls', title: 'Live calls' },
  { id: 'bans', title: 'Banned addresses' },
  { id: 'gateways', title: 'Gateways' },
];

export function livePage(root: HTMLElement, _me: Me): () => void {
  const st = status();
  const boxes = new Map<string, HTMLElement>();
  for (const v of VIEWS) {
    const box = h('div', { class: 'live', id: `live-${v.id}` }, h('p', {}, 'waiting…'));
    boxes.set(v.id, box);
    root.append(h('h2', {}, v.title), box);
  }
  root.prepend(st);
  const src = new EventSource('/console/api/events');
  src.onopen = () => (st.textContent = 'live');
  src.onerror = () => (st.textContent = 'connection lost, retrying…');
  for (const v of VIEWS) {
    src.addEventListener(v.id, (e) => {
      const r = JSON.parse((e as MessageEvent<string>).data) as ApiResult;
      const box = boxes.get(v.id)!;
      if (!r.ok) return box.replaceChildren(h('p', { class: 'error' }, r.text));
      const rows = r.rows ?? [];
      const cols = r.columns ?? Object.keys(rows[0] ?? {});
      const summary = r.fields
        ? h(
            'p',
            {},
            Object.entries(r.fields)
              .map(([k, x]) => `${k}: ${x}`)
              .join(' · '),
          )
        : h('p', {}, r.text);
      const hangUp =
        v.id === 'calls'
          ? (row: Record<string, unknown>) =>
              h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  'aria-label': `Disconnect call ${String(row.callid)}`,
                  onclick: () => {
                    st.textContent = 'disconnecting…';
                    run('disccall', { dbcallid: String(row.callid) }).then(
                      (x) => (st.textContent = x.result.text),
                      (err: Error) => (st.textContent = err.message),
                    );
                  },
                },
                'Disconnect',
              )
          : undefined;
      box.replaceChildren(summary, rows.length ? table(cols, rows, v.title, hangUp) : h('p', {}, 'none'));
    });
  }
  return () => src.close();
}
