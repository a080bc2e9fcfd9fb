/** Builds DOM nodes from data. Text is only ever set as text (never parsed as HTML), so names from the database
 * cannot inject markup or script. */
type Kid = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | EventListener | undefined;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, Attr> = {},
  ...kids: Kid[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...kids);
  return el;
}

export function append(el: Node, ...kids: Kid[]): void {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    el.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k)));
  }
}

export function clear(el: Element): void {
  el.replaceChildren();
}

let ids = 0;
/** A labelled form field: the label names the control for screen readers. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement): HTMLElement {
  if (!control.id) control.id = `f${++ids}`;
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
}

/** A table of rows (objects) with the given columns; cells are text. `extra` adds a last cell per row. */
export function table(
  columns: string[],
  rows: Array<Record<string, unknown>>,
  caption: string,
  extra?: (row: Record<string, unknown>) => Node,
): HTMLElement {
  const head = h(
    'tr',
    {},
    ...columns.map((c) => h('th', { scope: 'col' }, c)),
    extra ? h('th', { scope: 'col' }, '') : null,
  );
  const body = rows.map((r) =>
    h('tr', {}, ...columns.map((c) => h('td', {}, cell(r[c]))), extra ? h('td', {}, extra(r)) : null),
  );
  // a table wider than a phone scrolls in its own box, which the keyboard can reach and scroll too
  return h(
    'div',
    { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', {}, h('caption', {}, caption), h('thead', {}, head), h('tbody', {}, ...body)),
  );
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A status line read out by screen readers when it changes. */
export function status(): HTMLElement {
  return h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
}

export function copyButton(text: () => string, label = 'Copy'): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'copy' }, label);
  b.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text()).then(
      () => (b.textContent = 'Copied'),
      () => (b.textContent = 'Select and copy'),
    );
    setTimeout(() => (b.textContent = label), 1500);
  });
  return b;
}
