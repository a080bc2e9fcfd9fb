/**
 * The server console: any command the user may call, with its parameters, answered in a format of the API
 * document; completion from the registry, a history kept in this browser (localStorage).
 */
import { run, type Me } from './api';
import { commands, findCommand, parseParams } from './commands';
import { field, h, status } from './dom';

const FORMATS = ['text', 'cleartext', 'html', 'xml', 'soap', 'json', 'jsonp'];
const HISTORY = 'voxswitch.console.history';

interface Entry {
  command: string;
  params: string;
  format: string;
}

function history(): Entry[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(HISTORY) ?? '[]');
    return Array.isArray(v) ? (v as Entry[]).slice(0, 50) : [];
  } catch {
    return [];
  }
}

export function consolePage(root: HTMLElement, _me: Me): void {
  const list = h('datalist', { id: 'commandlist' });
  const cmd = h('input', { name: 'command', list: 'commandlist', autocomplete: 'off', autocapitalize: 'none' });
  const params = h('textarea', { name: 'params', rows: 3, spellcheck: 'false', placeholder: 'name=value, one a line' });
  const format = h('select', { name: 'format' }, ...FORMATS.map((f) => h('option', { value: f }, f)));
  const help = h('p', { class: 'hint', id: 'commandhelp' });
  const st = status();
  const answer = h('pre', { class: 'answer', 'aria-label': 'Answer', tabindex: 0 });
  const past = h('ol', { class: 'history', 'aria-label': 'History' });
  cmd.setAttribute('aria-describedby', 'commandhelp');

  commands().then(
    (all) => {
      for (const c of all)
        for (const n of [c.name, ...(c.aliases ?? [])]) list.append(h('option', { value: n }, c.name));
      const describe = () => {
        const c = findCommand(all, cmd.value);
        help.textContent = c
          ? `${c.name}${c.available ? '' : ' (not available)'} — level ${c.reqUser}; parameters: ${
              c.params.join(', ') || 'none'
            }. ${c.description}`
          : '';
        if (c && !params.value.trim()) params.placeholder = c.params.map((p) => `${p}=`).join('\n') || 'no parameters';
      };
      cmd.addEventListener('input', describe);
      describe();
    },
    (e: Error) => (help.textContent = e.message),
  );

  const drawHistory = () => {
    past.replaceChildren(
      ...history().map((e) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              onclick: () => {
                cmd.value = e.command;
                params.value = e.params;
                format.value = e.format;
                cmd.focus();
              },
            },
            `${e.command} ${e.params.replace(/\n/g, ' ')}`.trim(),
          ),
        ),
      ),
    );
  };

  const form = h(
    'form',
    { class: 'terminal', 'aria-label': 'Send a command' },
    field('Command', cmd),
    list,
    help,
    field('Parameters', params),
    field('Answer format', format),
    h('button', { type: 'submit' }, 'Send'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const entry: Entry = { command: cmd.value.trim(), params: params.value.trim(), format: format.value };
    if (!entry.command) return;
    st.textContent = `Sending ${entry.command}…`;
    run(entry.command, parseParams(entry.params), entry.format).then(
      (r) => {
        answer.textContent = r.encoded.body;
        answer.className = r.result.ok ? 'answer ok' : 'answer error';
        st.textContent = `${entry.command}: ${r.result.ok ? 'OK' : 'ERROR'}`;
        const rest = history().filter((x) => JSON.stringify(x) !== JSON.stringify(entry));
        localStorage.setItem(HISTORY, JSON.stringify([entry, ...rest].slice(0, 50)));
        drawHistory();
      },
      (err: Error) => (st.textContent = err.message),
    );
  });
  drawHistory();
  root.append(form, st, answer, h('h2', {}, 'History'), past);
  cmd.focus();
}
