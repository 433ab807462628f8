// Functions page: one table per namespace, refreshed every 5 s in place (rows are keyed by
// name and only changed cells are written, so nothing moves while data refreshes).
//   GET /system/functions?namespace=          name, image, replicas, availableReplicas, invocationCount
//   GET /system/functions/summary?namespace=  5xx errors over the last hour, last change (who, when)

import { every, getJSON, query } from './api.js';
import { ago, count, dot, h, health, setAttr, setDot, setText, stamp } from './dom.js';

const REFRESH_MS = 5000;
const FILTER_KEY = 'docker-faas.filter';

export function mount(main, ctx) {
  const ns = ctx.namespace;
  const filter = h('input', {
    type: 'search', id: 'filter', autocomplete: 'off', spellcheck: 'false',
    value: sessionStorage.getItem(FILTER_KEY) || '', 'aria-controls': 'functions-table',
  });
  const summary = h('p', { class: 'muted grow', 'aria-live': 'polite' });
  const banner = h('div', { class: 'banner', role: 'alert' });
  const tbody = h('tbody');
  const placeholder = h('tr', { class: 'empty' }, h('td', { colspan: 7, text: 'Loading…' }));
  tbody.append(placeholder);
  const th = (cls, text, extra = {}) => h('th', { class: cls, scope: 'col', ...extra }, text);
  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Functions ', h('span', { class: 'muted', text: `in ${ns}` })),
      h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/deploy', text: 'Deploy a function' }))),
    banner,
    h('div', { class: 'toolbar' },
      h('label', { for: 'filter', text: 'Filter by name' }), filter, summary),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'functions fixed', id: 'functions-table' },
        h('caption', { class: 'sr-only', text: `Functions in namespace ${ns}` }),
        h('thead', {}, h('tr', {},
          th('status', h('span', { class: 'sr-only', text: 'Status' })),
          th('name', 'Name'), th('image', 'Image'), th('replicas num', 'Replicas'),
          th('inv num', 'Invocations'), th('err num', 'Errors (1 h)'), th('change', 'Last change'))),
        tbody)),
    h('div', { class: 'legend', 'aria-hidden': 'true' },
      ...[['ok', 'all healthy'], ['degraded', 'degraded'], ['down', 'down'], ['zero', 'scaled to zero']]
        .map(([kind, words]) => h('span', {}, dot(kind, words), words))));

  const rows = new Map(); // name -> {tr, cells}
  let functions = [];
  const summaries = new Map();
  let loaded = false;

  function row(name) {
    let entry = rows.get(name);
    if (entry) return entry;
    const cells = {
      dot: dot('zero', ''),
      link: h('a', { href: `#/function/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, text: name }),
      image: h('code'),
      replicas: h('span'),
      inv: h('span'),
      err: h('span'),
      change: h('span'),
    };
    const tr = h('tr', { dataset: { name } },
      h('td', { class: 'status' }, cells.dot),
      h('td', { class: 'name ellipsis' }, cells.link),
      h('td', { class: 'image ellipsis' }, cells.image),
      h('td', { class: 'replicas num' }, cells.replicas),
      h('td', { class: 'inv num' }, cells.inv),
      h('td', { class: 'err num' }, cells.err),
      h('td', { class: 'change ellipsis' }, cells.change));
    entry = { tr, cells };
    rows.set(name, entry);
    return entry;
  }

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const shown = functions.filter((fn) => fn.name.includes(needle));
    const wanted = new Set(shown.map((fn) => fn.name));
    for (const [name, entry] of rows) {
      if (!wanted.has(name)) { entry.tr.remove(); rows.delete(name); }
    }
    let kinds = { ok: 0, degraded: 0, down: 0, zero: 0 };
    shown.forEach((fn, index) => {
      const { tr, cells } = row(fn.name);
      const [kind, words] = health(fn.replicas, fn.availableReplicas);
      kinds[kind] += 1;
      setDot(cells.dot, kind, words);
      setText(cells.image, fn.image);
      setAttr(cells.image, 'title', fn.image);
      setText(cells.replicas, `${fn.availableReplicas}/${fn.replicas}`);
      setAttr(cells.replicas, 'title', `${fn.availableReplicas} healthy of ${fn.replicas} desired`);
      setText(cells.inv, count(fn.invocationCount));
      const t = summaries.get(fn.name);
      if (t && t.recent.requests) {
        const rate = (100 * t.recent.errors) / t.recent.requests;
        setText(cells.err, `${rate < 10 && rate > 0 ? rate.toFixed(1) : Math.round(rate)}% (${count(t.recent.errors)})`);
        setAttr(cells.err, 'title', `${t.recent.errors} of ${t.recent.requests} calls answered 5xx in the last hour`);
      } else {
        setText(cells.err, '—');
        setAttr(cells.err, 'title', 'no calls in the last hour');
      }
      const last = t && t.lastChange;
      setText(cells.change, last ? `${last.actor} · ${ago(last.time)}` : '');
      setAttr(cells.change, 'title', last ? `${last.type} by ${last.actor} at ${stamp(last.time)}` : null);
      if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
    });
    if (shown.length === 0) {
      setText(placeholder.firstChild, loaded
        ? (functions.length ? 'No function matches the filter.' : 'No functions in this namespace yet.')
        : 'Loading…');
      if (!placeholder.isConnected) tbody.append(placeholder);
    } else if (placeholder.isConnected) {
      placeholder.remove();
    }
    const parts = [`${functions.length} function${functions.length === 1 ? '' : 's'}`];
    for (const [kind, words] of [['ok', 'healthy'], ['degraded', 'degraded'], ['down', 'down'], ['zero', 'at zero']]) {
      if (kinds[kind]) parts.push(`${kinds[kind]} ${words}`);
    }
    if (needle) parts.push(`${shown.length} shown`);
    setText(summary, loaded ? parts.join(' · ') : '');
  }

  async function refresh() {
    try {
      const [list, summary] = await Promise.all([
        getJSON(`/system/functions${query({ namespace: ns })}`),
        getJSON(`/system/functions/summary${query({ namespace: ns })}`),
      ]);
      functions = list.sort((a, b) => a.name.localeCompare(b.name));
      summaries.clear();
      for (const item of summary) summaries.set(item.name, item);
      setText(banner, '');
    } catch (err) {
      setText(banner, `Could not load the functions: ${err.message}`);
    }
    const firstTime = !loaded;
    loaded = true;
    render();
    if (firstTime) {
      performance.mark('docker-faas:functions-interactive');
      document.documentElement.dataset.ready = 'functions';
    }
  }

  filter.addEventListener('input', () => {
    sessionStorage.setItem(FILTER_KEY, filter.value);
    render();
  });
  const loop = every(REFRESH_MS, refresh);
  return () => loop.stop();
}
