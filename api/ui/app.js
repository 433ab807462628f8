// The dashboard's shell: hash routes, the namespace switcher, the connection indicator.
// Each page module exports mount(main, ctx, params) and returns a function that stops its
// timers and streams when the page is left. The functions page comes with the shell; the
// other pages are loaded the first time they are opened (a smaller first load).

import { DEFAULT_NAMESPACE, getJSON, onConnection } from './api.js';
import { setText } from './dom.js';
import * as functions from './functions.js';

const ROUTES = [
  { pattern: /^\/functions$/, nav: 'functions', title: 'Functions', page: async () => functions.mount },
  { pattern: /^\/function\/([^/]+)\/([^/]+)$/, nav: 'functions', title: 'Function', page: async () => (await import('./function.js')).mount },
  { pattern: /^\/deploy$/, nav: 'deploy', title: 'Deploy', page: async () => (await import('./form.js')).mountDeploy },
  { pattern: /^\/edit\/([^/]+)\/([^/]+)$/, nav: 'functions', title: 'Edit', page: async () => (await import('./form.js')).mountEdit },
  { pattern: /^\/events$/, nav: 'events', title: 'Events', page: async () => (await import('./events.js')).mount },
  { pattern: /^\/stack$/, nav: 'stack', title: 'Stack', page: async () => (await import('./stack.js')).mount },
];

const main = document.getElementById('main');
const picker = document.getElementById('namespace');
const KEY = 'docker-faas.namespace';
let unmount = null;
let current = '';
let firstRoute = true;

const ctx = {
  get namespace() { return sessionStorage.getItem(KEY) || DEFAULT_NAMESPACE; },
  set namespace(value) { sessionStorage.setItem(KEY, value); syncPicker(); },
  go(hash) {
    if (location.hash === hash) route(true); else location.hash = hash;
  },
  title(text) { document.title = text ? `${text} · docker-faas` : 'docker-faas'; },
};

function syncPicker() {
  const ns = ctx.namespace;
  if (![...picker.options].some((o) => o.value === ns)) picker.append(new Option(ns, ns));
  picker.value = ns;
}

async function loadNamespaces() {
  try {
    const names = await getJSON('/system/namespaces');
    const ns = ctx.namespace;
    if (!names.includes(ns)) names.push(ns);
    picker.replaceChildren(...names.map((n) => new Option(n, n)));
    picker.value = ns;
  } catch (err) {
    console.warn(err);
  }
}

let routing = 0;

async function route(force = false) {
  const path = (location.hash || '#/functions').slice(1);
  if (!force && path === current) return;
  const found = ROUTES.map((r) => [r, r.pattern.exec(path)]).find(([, m]) => m);
  if (!found) { location.replace('#/functions'); return; }
  current = path;
  const [entry, match] = found;
  if (unmount) unmount();
  unmount = null;
  const turn = ++routing;
  let mount;
  try {
    mount = await entry.page();
  } catch (err) {
    main.replaceChildren();
    setText(document.getElementById('connection'), `⚠ could not load the page: ${err.message}`);
    return;
  }
  if (turn !== routing) return; // another route was asked for meanwhile
  main.replaceChildren();
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === entry.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  ctx.title(entry.title);
  const params = match.slice(1).map(decodeURIComponent);
  if (params.length === 2) ctx.namespace = params[0]; // a function page names its namespace
  unmount = mount(main, ctx, params) || null;
  if (!firstRoute) {
    // a new page: move focus to its heading, as a page load would for a screen reader
    const heading = main.querySelector('h1');
    if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  }
  firstRoute = false;
}

picker.addEventListener('change', () => {
  ctx.namespace = picker.value;
  const onFunction = /^\/(function|edit)\//.test(current);
  if (onFunction) ctx.go('#/functions'); else route(true);
});

const indicator = document.getElementById('connection');
onConnection((state) => setText(indicator, state === true ? '' : `⚠ ${state}`));

window.addEventListener('hashchange', () => route());
syncPicker();
route();
loadNamespaces();
