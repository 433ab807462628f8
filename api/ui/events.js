// Events page: the audit timeline, newest first, with filters and live follow.
//   GET /system/events?function=&namespace=&type=&actor=&since=&until=&order=desc&limit=100
//   live: GET /system/events?…&after=<newest>&follow=true — an NDJSON stream when the gateway
//   offers one; when it answers a plain JSON array instead, the same query is repeated every 3 s.

import { call, every, getJSON, query, readLines, sleep } from './api.js';
import { ago, h, setText, stamp } from './dom.js';

const PAGE = 100;
const POLL_MS = 3000;
const TYPES = [
  'function.deployed', 'function.updated', 'function.scaled', 'function.removed', 'replica.failed',
  'namespace.created', 'namespace.updated', 'namespace.removed',
  'secret.created', 'secret.updated', 'secret.removed',
];

export function mount(main, ctx) {
  const ns = ctx.namespace;
  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id, text: label }), control);
  const fn = h('input', { id: 'ev-function', type: 'search', spellcheck: 'false', autocomplete: 'off' });
  const type = h('select', { id: 'ev-type' }, h('option', { value: '', text: 'any' }), TYPES.map((t) => h('option', { value: t, text: t })));
  const actor = h('input', { id: 'ev-actor', type: 'search', spellcheck: 'false', autocomplete: 'off' });
  const since = h('input', { id: 'ev-since', type: 'datetime-local', step: 1 });
  const until = h('input', { id: 'ev-until', type: 'datetime-local', step: 1 });
  const scope = h('select', { id: 'ev-scope' }, h('option', { value: ns, text: ns }), h('option', { value: '', text: 'all namespaces' }));
  const live = h('input', { id: 'ev-live', type: 'checkbox', checked: true });
  const banner = h('div', { class: 'banner', role: 'alert' });
  const state = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
    field('ev-function', 'Function', fn), field('ev-type', 'Type', type), field('ev-actor', 'Actor', actor),
    field('ev-scope', 'Namespace', scope), field('ev-since', 'Since', since), field('ev-until', 'Until', until),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary', text: 'Apply' }),
      h('button', { type: 'reset', text: 'Reset' })));
  const tbody = h('tbody');
  const more = h('button', { type: 'button', text: 'Load older' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Events' }),
      h('div', { class: 'actions' }, h('label', { class: 'check', for: 'ev-live' }, live, 'Follow live'), state)),
    filters, banner,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'events' },
        h('caption', { class: 'sr-only', text: 'Event log, newest first' }),
        h('thead', {}, h('tr', {}, ...['#', 'When', 'Who', 'Type', 'Target', 'Details'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody)),
    h('p', {}, more));

  const seen = new Set();
  let newest = 0;
  let oldestTime = null;
  let follower = null;
  let stopped = false;

  function params() {
    const toIso = (value) => (value ? new Date(value).toISOString() : '');
    return {
      function: fn.value.trim(), type: type.value, actor: actor.value.trim(), namespace: scope.value,
      since: toIso(since.value), until: toIso(until.value),
    };
  }

  function row(record, fresh) {
    const [kind, nsPart, name] = record.stream.split('/');
    const target = kind === 'function' || kind === 'outcome'
      ? h('a', { href: `#/function/${encodeURIComponent(nsPart)}/${encodeURIComponent(name)}`, text: `${name}.${nsPart}` })
      : h('span', { text: record.stream });
    return h('tr', { class: fresh ? 'fresh' : '', dataset: { position: record.position } },
      h('td', { class: 'pos num', text: String(record.position) }),
      h('td', { title: stamp(record.time) }, h('time', { datetime: record.time, text: stamp(record.time) }), h('br'), h('span', { class: 'muted small', text: ago(record.time) })),
      h('td', { text: record.actor }),
      h('td', {}, h('span', { class: 'badge', text: record.type })),
      h('td', {}, target),
      h('td', {}, h('span', { text: describe(record) }), ' ',
        h('details', {}, h('summary', { class: 'small', text: 'record' }), h('pre', { class: 'box', text: JSON.stringify(record, null, 2) }))));
  }

  function addNewer(records) {
    const fresh = records.filter((r) => !seen.has(r.position));
    for (const r of fresh) { seen.add(r.position); newest = Math.max(newest, r.position); }
    if (!fresh.length) return;
    tbody.prepend(...fresh.sort((a, b) => b.position - a.position).map((r) => row(r, true)));
    if (tbody.querySelector('tr.empty')) tbody.querySelector('tr.empty').remove();
  }

  async function load(older = false) {
    const q = { ...params(), order: 'desc', limit: PAGE };
    if (older && oldestTime) q.until = oldestTime;
    try {
      const records = await getJSON(`/system/events${query(q)}`);
      setText(banner, '');
      const fresh = records.filter((r) => !seen.has(r.position));
      for (const r of fresh) { seen.add(r.position); newest = Math.max(newest, r.position); }
      tbody.append(...fresh.map((r) => row(r, false)));
      if (records.length) oldestTime = records[records.length - 1].time;
      more.disabled = records.length < PAGE;
      if (!tbody.children.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 6, text: 'No events match.' })));
    } catch (err) {
      setText(banner, err.message);
    }
  }

  function stopFollow() {
    if (follower) follower.stop();
    follower = null;
    setText(state, '');
  }

  function startFollow() {
    stopFollow();
    let abort = null;
    let poller = null;
    let over = false;
    const newer = () => ({ ...params(), until: '', after: newest, order: 'asc', limit: 1000 });
    (async () => {
      while (!over && !stopped) {
        abort = new AbortController();
        let response;
        try {
          const { limit, ...open } = newer(); // a followed stream has no limit
          response = await call('GET', `/system/events${query({ ...open, follow: 'true' })}`, { signal: abort.signal });
        } catch (err) {
          if (err.name === 'AbortError') return;
          setText(state, `reconnecting (${err.message})`);
          await sleep(POLL_MS);
          continue;
        }
        if (!(response.headers.get('content-type') || '').includes('ndjson')) {
          // no streaming here: take this answer, then ask again every few seconds
          addNewer(await response.json());
          setText(state, 'live (every 3 s)');
          poller = every(POLL_MS, async () => addNewer(await getJSON(`/system/events${query(newer())}`)));
          return;
        }
        setText(state, 'live');
        try {
          await readLines(response, (record) => addNewer([record]));
        } catch (err) {
          if (err.name === 'AbortError') return;
        }
        await sleep(1000);
      }
    })();
    follower = { stop() { over = true; if (abort) abort.abort(); if (poller) poller.stop(); } };
  }

  async function reload() {
    stopFollow();
    seen.clear();
    newest = 0;
    oldestTime = null;
    tbody.replaceChildren();
    await load();
    if (live.checked && !until.value && !stopped) startFollow();
  }

  filters.addEventListener('submit', (event) => { event.preventDefault(); reload(); });
  filters.addEventListener('reset', () => { setTimeout(() => { scope.value = ns; reload(); }); });
  live.addEventListener('change', () => { if (live.checked) startFollow(); else stopFollow(); });
  more.addEventListener('click', () => load(true));
  reload();
  return () => { stopped = true; stopFollow(); };
}

function describe(record) {
  const d = record.data || {};
  switch (record.type) {
    case 'function.deployed':
      return `image ${d.spec?.image ?? ''}, ${d.replicas} replica${d.replicas === 1 ? '' : 's'}`;
    case 'function.updated':
      return `image ${d.spec?.image ?? ''}`;
    case 'function.scaled':
      return `${d.previous ?? '?'} → ${d.replicas}${d.reason ? ` (${d.reason})` : ''}`;
    case 'replica.failed':
      return `replica ${d.replica ?? '?'}: ${d.reason ?? ''}`;
    default:
      return '';
  }
}
