/**
 * The console's entry point: who am I (`/whoami`; a login form on 401), then the models
 * (`GET /models`, then `GET /changes` live), the views by the URL's hash: `#/` the list,
 * `#/models/{id}` a model, `#/status` the daemon's status.
 */
import {
  ApiError,
  clearAuth,
  getJson,
  hasCredentials,
  type ModelMeta,
  onUnauthorized,
  setBasic,
  type Whoami,
} from './api.js';
import { byId, h, setChildren } from './dom.js';
import { ListView } from './list-view.js';
import { ModelView } from './model-view.js';
import { followChanges } from './sse.js';
import { StatusPoller, StatusView } from './status-view.js';
import { ModelStore } from './store.js';

interface View {
  root: HTMLElement;
  mount(): void;
  unmount(): void;
}

const main = byId('main');
const userBox = byId('user');
const live = byId('live');
let session: AbortController | null = null;

async function start(): Promise<void> {
  let who: Whoami;
  try {
    who = await getJson<Whoami>('/whoami');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(hasCredentials() ? 'Wrong user name or password.' : '');
      return;
    }
    setChildren(
      main,
      h('p', { class: 'message error' }, `The daemon does not answer: ${String(err)}`),
    );
    return;
  }
  const canWrite = who.role === 'write';
  document.body.dataset.role = who.role ?? 'none';
  setChildren(
    userBox,
    who.auth
      ? h(
          'span',
          {},
          `${who.user ?? ''} (${who.role ?? ''})`,
          h(
            'button',
            {
              type: 'button',
              id: 'logout',
              onclick: () => {
                clearAuth();
                location.hash = '#/';
                location.reload();
              },
            },
            'Log out',
          ),
        )
      : h('span', {}, canWrite ? 'no login needed (read and write)' : 'read only'),
  );
  byId('nav').hidden = false;
  session = new AbortController();
  const store = new ModelStore();
  const poller = new StatusPoller();
  poller.start();
  try {
    store.replaceAll(await getJson<ModelMeta[]>('/models'));
  } catch (err) {
    setChildren(live, `Could not list the models: ${String(err)}`);
  }
  void followChanges(session.signal, {
    onEvent: (e) => store.onEvent(e),
    onState: (connected, why) => {
      live.textContent = connected ? 'live' : `reconnecting (${why ?? ''})`;
      live.className = connected ? 'live on' : 'live off';
    },
    onUnauthorized: () => showLogin('Your login is no longer accepted.'),
  });

  let view: View | null = null;
  const route = (): void => {
    view?.unmount();
    const hash = location.hash || '#/';
    const m = /^#\/models\/([1-9][0-9]{0,15})$/.exec(hash);
    if (m !== null) view = new ModelView(Number(m[1]), store, canWrite);
    else if (hash === '#/status') view = new StatusView(poller);
    else view = new ListView(store);
    for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a'))
      a.setAttribute('aria-current', String(a.getAttribute('href') === (m ? '#/' : hash)));
    setChildren(main, view.root);
    view.mount();
    const heading = main.querySelector('h1');
    if (heading !== null) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  };
  window.addEventListener('hashchange', route);
  route();
}

function showLogin(message: string): void {
  session?.abort();
  byId('nav').hidden = true;
  setChildren(userBox);
  const user = h('input', {
    id: 'login-user',
    name: 'username',
    autocomplete: 'username',
    required: true,
  });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in'),
    h('p', {}, 'This aimm-store asks for a user name and password.'),
    message !== '' && h('p', { class: 'message error', role: 'alert' }, message),
    h('label', { for: 'login-user' }, 'User name'),
    user,
    h('label', { for: 'login-password' }, 'Password'),
    password,
    h('button', { type: 'submit' }, 'Log in'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setBasic(user.value, password.value);
    void start();
  });
  setChildren(main, form);
  user.focus();
}

onUnauthorized(() => {
  if (session !== null && !session.signal.aborted) showLogin('Your login is no longer accepted.');
});

void start();
