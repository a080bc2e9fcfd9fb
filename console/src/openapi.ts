/** The OpenAPI 3.1 description of this server (/openapi.json), rendered as a list of operations. */
import type { Me } from './api';
import { h, status } from './dom';

interface Op {
  summary?: string;
  description?: string;
  parameters?: Array<{ name: string; in: string; required?: boolean; description?: string }>;
  'x-voxswitch-level'?: number;
}

export function openApiPage(root: HTMLElement, _me: Me): void {
  const st = status();
  const filter = h('input', {
    name: 'filter',
    type: 'search',
    'aria-label': 'Filter operations',
    placeholder: 'filter',
  });
  const list = h('div', { class: 'openapi' });
  let doc: { info?: { title?: string; version?: string }; paths?: Record<string, Record<string, Op>> } = {};
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const items: HTMLElement[] = [];
    for (const [path, ops] of Object.entries(doc.paths ?? {})) {
      if (q && !path.toLowerCase().includes(q)) continue;
      for (const [method, op] of Object.entries(ops)) {
        if (typeof op !== 'object' || !op || !('summary' in op || 'description' in op)) continue;
        items.push(
          h(
            'details',
            {},
            h('summary', {}, h('code', {}, `${method.toUpperCase()} ${path}`), ' ', op.summary ?? ''),
            h('p', {}, op.description ?? ''),
            op['x-voxswitch-level'] !== undefined ? h('p', {}, `level ${op['x-voxswitch-level']}`) : null,
            h(
              'ul',
              {},
              ...(op.parameters ?? []).map((p) =>
                h(
                  'li',
                  {},
                  h('code', {}, p.name),
                  ` (${p.in}${p.required ? ', required' : ''}) ${p.description ?? ''}`,
                ),
              ),
            ),
          ),
        );
      }
    }
    list.replaceChildren(...items);
    st.textContent = `${items.length} operations`;
  };
  fetch('/openapi.json', { credentials: 'same-origin' })
    .then((r) => r.json())
    .then(
      (d: typeof doc) => {
        doc = d;
        root.prepend(h('p', {}, `${d.info?.title ?? ''} ${d.info?.version ?? ''}`));
        draw();
      },
      (e: Error) => (st.textContent = e.message),
    );
  filter.addEventListener('input', draw);
  root.append(filter, st, list);
}
