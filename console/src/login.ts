/** The log-in form: a password, or authmd5 computed here with a fresh salt (the password never leaves the page). */
import SparkMD5 from 'spark-md5';
import { call, type Me } from './api';
import { field, h, status } from './dom';

export function randomSalt(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** authmd5 as the API defines it: md5("ck5Gp" + authid + password + server salt + authsalt). */
export function authMd5(authid: string, password: string, serverSalt: string, salt: string): string {
  return SparkMD5.hash('ck5Gp' + authid + password + serverSalt + salt);
}

export function loginPage(root: HTMLElement, done: (me: Me) => void): void {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const pwd = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const useMd5 = h('input', { type: 'checkbox', name: 'md5' });
  const serverSalt = h('input', { name: 'serversalt', autocomplete: 'off' });
  const saltField = field('Server md5 salt (apiv2md5salt)', serverSalt);
  saltField.hidden = true;
  useMd5.addEventListener('change', () => (saltField.hidden = !useMd5.checked));
  const st = status();
  const form = h(
    'form',
    { class: 'login', 'aria-label': 'Log in' },
    h('h1', {}, 'Log in'),
    field('User name', user),
    field('Password', pwd),
    h('div', { class: 'field inline' }, useMd5, h('label', { for: (useMd5.id = 'md5') }, 'Send authmd5 instead')),
    saltField,
    h('button', { type: 'submit' }, 'Log in'),
    st,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    st.textContent = 'Logging in…';
    const username = user.value.trim();
    const salt = randomSalt();
    const body = useMd5.checked
      ? { username, authmd5: authMd5(username, pwd.value, serverSalt.value, salt), authsalt: salt }
      : { username, password: pwd.value };
    call<Me>('login', body).then(
      (me) => {
        pwd.value = '';
        done(me);
      },
      (err: Error) => (st.textContent = `Log-in refused: ${err.message}`),
    );
  });
  root.append(form);
  user.focus();
}
