/** Forms of the management pages: a labelled form whose submit runs an action and reads its answer out. */
import { run } from './api';
import { h, status } from './dom';

/**
 * A form named `title` (its accessible name and heading); submitting it (Enter in a field, or the button) runs
 * `act` and shows the answer in its status line, which screen readers announce.
 */
export function form(
  title: string,
  fields: HTMLElement[],
  submit: string,
  act: () => Promise<string>,
  extra: HTMLElement[] = [],
): HTMLFormElement {
  const st = status();
  const f = h(
    'form',
    { 'aria-label': title },
    h('h2', {}, title),
    ...fields,
    h('button', { type: 'submit' }, submit),
    ...extra,
    st,
  );
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    st.textContent = '…';
    act().then(
      (t) => (st.textContent = t),
      (err: Error) => (st.textContent = `ERROR: ${err.message}`),
    );
  });
  return f;
}

export const input = (name: string, attrs: Record<string, string> = {}) =>
  h('input', { name, autocomplete: 'off', autocapitalize: 'none', ...attrs });

/** A select of `options` ([value, label]), the first selected. */
export function select(name: string, options: Array<[string, string]>): HTMLSelectElement {
  return h('select', { name }, ...options.map(([v, label]) => h('option', { value: v }, label)));
}

/** Runs a command; its answer as `OK: …` or `ERROR: …`. */
export async function answer(command: string, params: Record<string, string>): Promise<string> {
  const r = await run(command, params, 'json');
  return `${r.result.ok ? 'OK' : 'ERROR'}: ${r.result.text}`;
}
