/** The durable queues (SMS, e-mail, fax, webhook deliveries): depths and latest jobs, live over server-sent events. */
import type { ApiResult, Me } from './api';
import { h, status, table } from './dom';

const NAMES: Array<[string, string]> = [
  ['sms', 'SMS'],
  ['mail', 'E-mail'],
  ['fax', 'Fax'],
  ['webhook', 'Webhooks'],
];

export function queuesPage(root: HTMLElement, _me: Me): () => void {
  const st = status();
  const depths = h('dl', { class: 'depths', id: 'queue-depths' });
  const jobs = h('div', { id: 'queue-jobs' }, h('p', {}, 'waiting…'));
  root.append(st, h('h2', {}, 'Waiting jobs'), depths, h('h2', {}, 'Latest jobs'), jobs);
  const src = new EventSource('/console/api/events?views=queues');
  src.onopen = () => (st.textContent = 'live');
  src.onerror = () => (st.textContent = 'connection lost, retrying…');
  src.addEventListener('queues', (e) => {
    const r = JSON.parse((e as MessageEvent<string>).data) as ApiResult;
    if (!r.ok) {
      depths.replaceChildren();
      return jobs.replaceChildren(h('p', { class: 'error' }, r.text));
    }
    depths.replaceChildren(
      ...NAMES.flatMap(([id, name]) => [h('dt', {}, name), h('dd', { 'data-queue': id }, String(r.fields?.[id] ?? 0))]),
    );
    const rows = r.rows ?? [];
    jobs.replaceChildren(rows.length ? table(r.columns ?? [], rows, 'Latest jobs of every queue') : h('p', {}, 'none'));
  });
  return () => src.close();
}
