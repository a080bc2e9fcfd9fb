/** The console's entry: log-in or the pages, chosen by the session the server knows (the cookie is HttpOnly). */
import './style.css';
import { call, HttpError, setCsrf, type Me } from './api';
import { clear, h } from './dom';
import { loginPage } from './login';
import { consolePage } from './terminal';
import { examplesPage } from './examples';
import { livePage } from './live';
import { managePage } from './manage';
import { cdrPage } from './cdrs';
import { chartsPage } from './charts';
import { openApiPage } from './openapi';
import { numbersPage } from './numbers';
import { gatewaysPage } from './gateways';
import { apiRulesPage } from './apirules';
import { queuesPage } from './queues';

const top = document.getElementById('top')!;
const main = document.getElementById('main')!;

type Page = (root: HTMLElement, me: Me) => void | (() => void);
/** `maxRank`: the page is offered to accounts of this rank or higher (srvadmin 4, admin 6; the server checks too). */
const PAGES: Array<{ id: string; title: string; page: Page; maxRank?: number }> = [
  { id: 'console', title: 'Console', page: consolePage },
  { id: 'examples', title: 'API examples', page: examplesPage },
  { id: 'live', title: 'Live', page: livePage },
  { id: 'manage', title: 'Manage', page: managePage },
  { id: 'dids', title: 'DIDs', page: numbersPage, maxRank: 6 },
  { id: 'gateways', title: 'Gateways', page: gatewaysPage, maxRank: 6 },
  { id: 'apirules', title: 'API rules', page: apiRulesPage, maxRank: 4 },
  { id: 'queues', title: 'Queues', page: queuesPage, maxRank: 6 },
  { id: 'cdrs', title: 'CDRs', page: cdrPage },
  { id: 'charts', title: 'Charts', page: chartsPage },
  { id: 'openapi', title: 'OpenAPI', page: openApiPage },
];

let leave: (() => void) | undefined;

const pagesOf = (me: Me) => PAGES.filter((p) => p.maxRank === undefined || me.user.rank <= p.maxRank);

function show(me: Me, id: string): void {
  leave?.();
  leave = undefined;
  const p = pagesOf(me).find((x) => x.id === id) ?? PAGES[0]!;
  for (const b of top.querySelectorAll('nav button')) {
    b.setAttribute('aria-current', (b as HTMLElement).dataset.page === p.id ? 'page' : 'false');
  }
  clear(main);
  main.append(h('h1', {}, p.title));
  const section = h('section', { 'aria-label': p.title });
  main.append(section);
  leave = p.page(section, me) ?? undefined;
  if (location.hash !== `#${p.id}`) history.replaceState(null, '', `#${p.id}`);
}

function app(me: Me): void {
  setCsrf(me.csrf);
  clear(top);
  const nav = h(
    'nav',
    { 'aria-label': 'Console pages' },
    ...pagesOf(me).map((p) =>
      h('button', { type: 'button', 'data-page': p.id, onclick: () => show(me, p.id) }, p.title),
    ),
  );
  const out = h('button', { type: 'button', class: 'logout', onclick: () => void logout() }, 'Log out');
  top.append(
    h('div', { class: 'brand' }, 'voxswitch ', h('span', { class: 'who' }, `${me.user.username} (${me.user.type})`)),
    nav,
    out,
  );
  show(me, location.hash.slice(1) || 'console');
}

async function logout(): Promise<void> {
  leave?.();
  await call('logout', {}).catch(() => undefined);
  setCsrf('');
  boot();
}

function boot(): void {
  call<Me>('session').then(app, (e: unknown) => {
    clear(top);
    top.append(h('div', { class: 'brand' }, 'voxswitch'));
    clear(main);
    if (!(e instanceof HttpError) || e.status !== 401) main.append(h('p', { role: 'alert' }, String(e)));
    loginPage(main, app);
  });
}

boot();
