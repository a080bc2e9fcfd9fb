/**
 * The API example generator: for a command the user may call, ready requests for this server in every form the
 * API document lists, with authkey/authid and an authmd5 computed here with a fresh authsalt per example (a salt is
 * accepted once). The password typed here stays in the page.
 */
import type { Command, Me } from './api';
import { commands, findCommand } from './commands';
import { copyButton, field, h, status } from './dom';
import { authMd5, randomSalt } from './login';

export interface ExampleInput {
  base: string; // http://host:port
  command: string;
  params: Record<string, string>;
  authid: string;
  password: string;
  authkey: string;
  serverSalt: string;
  salt?: () => string;
}

export interface Example {
  form: string;
  text: string;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The examples themselves (pure: tested with the server's own authentication). */
export function buildExamples(i: ExampleInput): Example[] {
  const salt = i.salt ?? randomSalt;
  const url = new URL(i.base);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const ws = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}/mvstwebsock`;
  const auth = (): Record<string, string> => {
    const a: Record<string, string> = {};
    if (i.authkey) a.authkey = i.authkey;
    if (!i.authid) return a;
    a.authid = i.authid;
    if (i.password) {
      const s = salt();
      a.authmd5 = authMd5(i.authid, i.password, i.serverSalt, s);
      a.authsalt = s;
    } else a.authpwd = 'PASSWORD';
    return a;
  };
  const all = (extra: Record<string, string> = {}) => ({ apientry: i.command, ...auth(), ...i.params, ...extra });
  const qs = (o: Record<string, string>) => new URLSearchParams(o).toString();
  const get = `${i.base}/mvapireq/?${qs(all())}`;
  const tcp = `/mvapireq/?${qs(all())}`;
  const udp = `/mvapireq/?${qs(all())}`;
  const wsLine = `/mvapireq/?${qs(all())}`;
  const xmlBody =
    '<mvapireq>' +
    Object.entries(all())
      .map(([k, v]) => `<${k}>${xml(v)}</${k}>`)
      .join('') +
    '</mvapireq>';
  const old: Record<string, string> = {};
  if (i.authkey) old.key = i.authkey;
  if (i.authid) Object.assign(old, { username: i.authid, password: i.password || 'PASSWORD' });
  return [
    { form: 'HTTP GET (curl)', text: `curl ${sh(get)}` },
    { form: 'HTTP GET URL', text: `${i.base}/mvapireq/?${qs(all())}` },
    { form: 'HTTP POST form body', text: `curl -d ${sh(qs(all()))} ${sh(`${i.base}/mvapireq/`)}` },
    {
      form: 'HTTP POST JSON body',
      text: `curl -H 'Content-Type: application/json' -d ${sh(JSON.stringify(all()))} ${sh(`${i.base}/mvapireq/`)}`,
    },
    {
      form: 'HTTP POST XML body',
      text: `curl -H 'Content-Type: application/xml' -d ${sh(xmlBody)} ${sh(`${i.base}/mvapireq/`)}`,
    },
    { form: 'raw TCP line', text: `printf '%s\\r\\n' ${sh(tcp)} | nc -w 2 ${host} ${port}` },
    { form: 'UDP datagram', text: `printf '%s' ${sh(udp)} | nc -u -w 1 ${host} ${port}` },
    {
      form: 'WebSocket (mvstwebsock, JavaScript)',
      text:
        `const ws = new WebSocket(${JSON.stringify(ws)});\n` +
        `ws.onopen = () => ws.send(${JSON.stringify(wsLine)});\n` +
        'ws.onmessage = (m) => console.log(m.data);',
    },
    {
      form: 'JSONP (script element)',
      text: `<script src="${xml(`${i.base}/mvapireq/?${qs(all({ format: 'jsonp', callback: 'onAnswer' }))}`)}"></script>`,
    },
    {
      form: 'old API (xmapi, curl)',
      text: `curl ${sh(`${i.base}/xmapi/${encodeURIComponent(i.command)}?${qs({ ...old, ...i.params })}`)}`,
    },
  ];
}

export function examplesPage(root: HTMLElement, me: Me): void {
  const cmd = h('select', { name: 'command' });
  const paramBox = h('div', { class: 'params' });
  const authid = h('input', { name: 'authid', value: me.user.username, autocapitalize: 'none' });
  const pwd = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  const key = h('input', { name: 'authkey', value: me.server.authkey ?? '', autocomplete: 'off' });
  const salt = h('input', { name: 'serversalt', value: me.server.md5salt ?? '', autocomplete: 'off' });
  const out = h('div', { class: 'examples', 'aria-live': 'polite' });
  const st = status();
  let all: Command[] = [];
  const drawParams = () => {
    const c = findCommand(all, cmd.value);
    paramBox.replaceChildren(
      ...(c?.params ?? []).map((p) =>
        field(p, h('input', { name: `p_${p}`, 'data-param': p, autocapitalize: 'none' })),
      ),
    );
  };
  commands().then(
    (list) => {
      all = list.filter((c) => c.available);
      cmd.replaceChildren(...all.map((c) => h('option', { value: c.name }, c.name)));
      drawParams();
    },
    (e: Error) => (st.textContent = e.message),
  );
  cmd.addEventListener('change', drawParams);

  const form = h(
    'form',
    { class: 'generator', 'aria-label': 'Generate API examples' },
    field('Command', cmd),
    paramBox,
    field('authid (user name)', authid),
    field('Password (for authmd5; stays in this page)', pwd),
    field(me.server.keyRequired ? 'authkey (required by this server)' : 'authkey (none set)', key),
    field('Server md5 salt (apiv2md5salt)', salt),
    h('button', { type: 'submit' }, 'Generate'),
    st,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params: Record<string, string> = {};
    for (const el of paramBox.querySelectorAll<HTMLInputElement>('input[data-param]'))
      if (el.value !== '') params[el.dataset.param!] = el.value;
    const examples = buildExamples({
      base: location.origin,
      command: cmd.value,
      params,
      authid: authid.value.trim(),
      password: pwd.value,
      authkey: key.value.trim(),
      serverSalt: salt.value,
    });
    out.replaceChildren(
      ...examples.map((x) =>
        h(
          'figure',
          { class: 'example' },
          h(
            'figcaption',
            {},
            x.form,
            ' ',
            copyButton(() => x.text),
          ),
          h('pre', { tabindex: 0 }, x.text),
        ),
      ),
    );
    st.textContent = pwd.value
      ? `${examples.length} examples; each authsalt is accepted once: generate again for new ones`
      : `${examples.length} examples with authpwd=PASSWORD: type the password to get authmd5`;
  });
  root.append(form, out);
}
