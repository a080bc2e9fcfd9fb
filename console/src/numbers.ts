/** The DID pool (tb_numbers): the list with its states, add numbers, assign one to a user, free or delete one. */
import { run, type Me } from './api';
import { field, h, status, table } from './dom';
import { answer, form, input, select } from './forms';

export function numbersPage(root: HTMLElement, _me: Me): void {
  const st = status();
  const which = select('status', [
    ['', 'all'],
    ['free', 'free'],
    ['assigned', 'assigned'],
    ['locked', 'locked'],
  ]);
  const list = h('div', { id: 'did-pool' }, h('p', {}, 'loading…'));
  const refresh = async () => {
    const r = await run('numbers', which.value ? { status: which.value } : {});
    if (!r.result.ok) return list.replaceChildren(h('p', { class: 'error' }, r.result.text));
    const rows = r.result.rows ?? [];
    const act = (row: Record<string, unknown>) => {
      const n = String(row.number);
      const free = row.status === 'free';
      return h(
        'button',
        {
          type: 'button',
          class: free ? 'danger' : '',
          'aria-label': `${free ? 'Delete' : 'Free'} number ${n}`,
          onclick: () => void change(free ? 'delnumber' : 'freenumber', n),
        },
        free ? 'Delete' : 'Free',
      );
    };
    list.replaceChildren(
      h('p', {}, r.result.text),
      rows.length
        ? table(['number', 'status', 'username', 'lockeduntil', 'created'], rows, 'Numbers of the pool', act)
        : h('p', {}, 'no numbers'),
    );
  };
  const change = async (command: string, number: string) => {
    st.textContent = '…';
    st.textContent = await answer(command, { number }).catch((e: Error) => `ERROR: ${e.message}`);
    await refresh();
  };
  which.addEventListener('change', () => void refresh());
  const add = { numbers: input('numbers', { inputmode: 'tel' }), from: input('from', { inputmode: 'tel' }) };
  const count = input('count', { inputmode: 'numeric' });
  const as = { number: input('number', { inputmode: 'tel' }), user: input('username') };
  const after = (t: string) => refresh().then(() => t);
  root.append(
    h('h2', {}, 'Pool'),
    h('div', { class: 'toolbar' }, field('Show', which), st),
    list,
    form(
      'Add numbers',
      [
        field('Numbers (comma or space separated)', add.numbers),
        field('Or a range from', add.from),
        field('Count', count),
      ],
      'Add',
      async () =>
        after(
          await answer('addnumbers', {
            ...(add.numbers.value.trim() ? { numbers: add.numbers.value } : {}),
            ...(add.from.value.trim() || count.value.trim() ? { from: add.from.value, count: count.value } : {}),
          }),
        ),
    ),
    form('Assign a number', [field('Number', as.number), field('User name', as.user)], 'Assign', async () =>
      after(await answer('assignnumber', { number: as.number.value, username: as.user.value })),
    ),
  );
  void refresh();
}
