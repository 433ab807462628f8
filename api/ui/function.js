// Function page: status and scale, live replicas, spec, traffic charts, invoke panel, live
// logs, version history with diffs and rollback, delete. API calls:
//   GET  /system/function/{name}?namespace=            every 3 s (status, restarts, lastError, rollout)
//   GET  /system/function/{name}/replicas?namespace=   every 3 s
//   GET  /system/function/{name}/metrics?namespace=    every 10 s (charts)
//   GET  /system/function/{name}/history?namespace=    every 5 s (re-drawn only when it grew)
//   GET  /system/logs?name=&namespace=&follow=true     one NDJSON stream, reopened from the last line
//   POST /system/scale-function/{name}                 scale
//   GET  /system/function/{name}?at=<position>, then PUT /system/functions   rollback
//   DELETE /system/functions                           delete
//   ANY  /function/{name}[.{namespace}]/…              the invoke panel calls the function itself

import { ApiError, call, deploymentOf, every, getJSON, invokePath, query, readLines, sleep } from './api.js';
import { lineChart } from './charts.js';
import {
  ago, bytes, change, clock, confirmDialog, count, dot, h, health, millis, setAttr, setDot,
  setText, stamp, toast,
} from './dom.js';

const STATUS_MS = 3000;
const HISTORY_MS = 5000;
const METRICS_MS = 10000;
const LOG_LINES = 2000;
const BODY_SHOWN = 64 * 1024;

export function mount(main, ctx, [ns, name]) {
  ctx.title(name);
  const base = query({ namespace: ns });
  const fnPath = `/system/function/${encodeURIComponent(name)}`;
  const stops = [];
  let gone = false;

  // ---- head ----
  const headDot = dot('zero', '');
  const deleteButton = h('button', { type: 'button', class: 'danger', text: 'Delete…' });
  const banner = h('div', { class: 'banner', role: 'alert' });
  main.append(
    h('div', { class: 'page-head' },
      h('h1', { class: 'status-line' }, headDot, h('span', { text: name })),
      h('span', { class: 'muted', text: `namespace ${ns}` }),
      h('div', { class: 'actions' },
        h('a', { class: 'button', href: `#/edit/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, text: 'Edit' }),
        deleteButton)),
    banner);

  // ---- status + scale + replicas ----
  const fields = {};
  const kv = (key, label) => {
    fields[key] = h('dd', { id: `status-${key}` });
    return [h('dt', { text: label }), fields[key]];
  };
  const scaleInput = h('input', { type: 'number', id: 'scale-replicas', min: 0, step: 1, inputmode: 'numeric', required: true });
  const scaleForm = h('form', { class: 'scale' },
    h('div', { class: 'field-inline' }, h('label', { for: 'scale-replicas', text: 'Desired replicas' }), scaleInput),
    h('button', { type: 'submit', class: 'primary', text: 'Scale' }));
  const replicaBody = h('tbody');
  const replicaEmpty = h('tr', { class: 'empty' }, h('td', { colspan: 5, text: 'No containers yet.' }));
  replicaBody.append(replicaEmpty);
  const overview = h('section', { class: 'card', 'aria-labelledby': 'h-status' },
    h('h2', { id: 'h-status', text: 'Status' }),
    h('dl', { class: 'kv' },
      kv('health', 'Health'), kv('replicas', 'Replicas'), kv('invocations', 'Invocations'),
      kv('restarts', 'Restarts'), kv('exit', 'Last exit reason'), kv('error', 'Last error'),
      kv('rollout', 'Rollout'), kv('created', 'Created')),
    scaleForm,
    h('h3', { id: 'h-replicas', text: 'Replicas' }),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'replicas', 'aria-labelledby': 'h-replicas' },
        h('thead', {}, h('tr', {}, ...['Instance', 'Slot', 'State', 'Health', 'Started'].map((t) => h('th', { scope: 'col', text: t })))),
        replicaBody)));

  // ---- spec ----
  const specBody = h('div', { 'aria-live': 'off' });
  const specCard = h('section', { class: 'card', 'aria-labelledby': 'h-spec' }, h('h2', { id: 'h-spec', text: 'Spec' }), specBody);

  // ---- charts ----
  const rps = lineChart({ title: 'Requests per second', unit: 'req/s', format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(2)) });
  const latency = lineChart({ title: 'Latency', unit: 'ms', format: (v) => (v >= 1 ? `${v.toFixed(1)} s` : millis(v)) });
  const errors = lineChart({ title: 'Errors (5xx) per 10 s', unit: 'errors', format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)) });
  const chartsCard = h('section', { class: 'card', 'aria-labelledby': 'h-traffic' },
    h('h2', { id: 'h-traffic', text: 'Traffic, last hour' }),
    h('div', { class: 'charts' }, rps.el, latency.el, errors.el));

  // ---- invoke ----
  const invoke = invokePanel(name, ns, () => chartLoop.now());

  // ---- logs ----
  const logs = logPane(name, ns);
  stops.push(logs.stop);

  // ---- history ----
  const historyBody = h('tbody');
  const historyCard = h('section', { class: 'card wide', 'aria-labelledby': 'h-history' },
    h('h2', { id: 'h-history', text: 'Version history' }),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'history', 'aria-labelledby': 'h-history' },
        h('thead', {}, h('tr', {}, ...['Version', 'Change', 'Who', 'When', 'Fields', ''].map((t) => h('th', { scope: 'col', text: t })))),
        historyBody)));

  main.append(h('div', { class: 'grid' }, overview, chartsCard, invoke.el, specCard, logs.el, historyCard));

  // ---- status polling ----
  let status = null;
  let scaleDirty = false;
  scaleInput.addEventListener('input', () => { scaleDirty = true; });
  async function loadStatus() {
    try {
      status = await getJSON(`${fnPath}${base}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        gone = true;
        setText(banner, `${name} is not deployed in ${ns} (it was removed, or never existed). Its history and logs are below.`);
        setDot(headDot, 'zero', 'not deployed');
        setText(fields.health, 'not deployed');
        return;
      }
      throw err;
    }
    gone = false;
    setText(banner, '');
    const [kind, words] = health(status.replicas, status.availableReplicas);
    setDot(headDot, kind, words);
    setText(fields.health, words);
    setText(fields.replicas, `${status.availableReplicas} healthy of ${status.replicas} desired`);
    setText(fields.restarts, String(status.restarts ?? 0));
    setText(fields.exit, status.lastExitReason || '—');
    setText(fields.error, status.lastError || '—');
    setText(fields.rollout, status.rollout || '—');
    setText(fields.created, stamp(status.createdAt));
    if (!scaleDirty && document.activeElement !== scaleInput) scaleInput.value = String(status.replicas);
    renderSpec(specBody, status);
  }
  async function loadReplicas() {
    if (gone) { renderReplicas([]); return; }
    try {
      renderReplicas(await getJSON(`${fnPath}/replicas${base}`));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }
  const replicaRows = new Map();
  function renderReplicas(list) {
    const seen = new Set();
    list.forEach((replica, index) => {
      seen.add(replica.instance);
      let entry = replicaRows.get(replica.instance);
      if (!entry) {
        const cells = { dot: dot('zero', ''), health: h('span'), state: h('span'), slot: h('span'), created: h('span') };
        const tr = h('tr', { dataset: { instance: replica.instance } },
          h('td', {}, h('code', { text: replica.instance })),
          h('td', {}, cells.slot), h('td', {}, cells.state),
          h('td', {}, h('span', { class: 'status-line' }, cells.dot, cells.health)),
          h('td', {}, cells.created));
        entry = { tr, cells };
        replicaRows.set(replica.instance, entry);
      }
      const { cells, tr } = entry;
      const words = replica.healthy ? 'healthy' : replica.state === 'running' ? 'not healthy yet' : replica.state;
      setDot(cells.dot, replica.healthy ? 'ok' : replica.state === 'running' ? 'degraded' : 'down', words);
      setText(cells.health, words + (replica.current ? '' : ' (old spec)'));
      setText(cells.state, replica.state);
      setText(cells.slot, replica.replica >= 0 ? String(replica.replica) : '—');
      setText(cells.created, replica.created ? ago(replica.created) : '');
      setAttr(cells.created, 'title', replica.created ? stamp(replica.created) : null);
      if (replicaBody.children[index] !== tr) replicaBody.insertBefore(tr, replicaBody.children[index] || null);
    });
    for (const [id, entry] of replicaRows) if (!seen.has(id)) { entry.tr.remove(); replicaRows.delete(id); }
    if (list.length) replicaEmpty.remove(); else if (!replicaEmpty.isConnected) replicaBody.append(replicaEmpty);
    logs.instances(list.map((r) => r.instance));
  }
  const statusLoop = every(STATUS_MS, async () => {
    await loadStatus();
    await loadReplicas();
  });
  stops.push(statusLoop.stop);

  scaleForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const replicas = Number(scaleInput.value);
    if (!Number.isInteger(replicas) || replicas < 0) {
      toast('Replicas: a whole number from 0 up', 'bad');
      scaleInput.focus();
      return;
    }
    try {
      await call('POST', `/system/scale-function/${encodeURIComponent(name)}`, { json: { serviceName: name, namespace: ns, replicas } });
      scaleDirty = false;
      toast(`Scaling ${name} to ${replicas}`);
      statusLoop.now();
      historyLoop.now();
    } catch (err) {
      toast(`Scale failed: ${err.message}`, 'bad');
    }
  });

  // ---- charts polling ----
  const chartLoop = every(METRICS_MS, async () => {
    if (gone) return;
    let data;
    try {
      data = await getJSON(`${fnPath}/metrics${base}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;
      throw err;
    }
    setText(fields.invocations, `${count(data.invocations)} (${count(data.errors)} answered 5xx)`);
    const at = (sample) => Date.parse(sample.time);
    const samples = data.samples;
    rps.draw([{ name: 'req/s', className: 's1', points: samples.map((x) => [at(x), x.rps]) }]);
    latency.draw([
      { name: 'p50', className: 's1', points: samples.map((x) => [at(x), x.p50]) },
      { name: 'p99', className: 's2', points: samples.map((x) => [at(x), x.p99]) },
    ]);
    errors.draw([{ name: 'errors', className: 'bad', points: samples.map((x) => [at(x), x.errors]) }]);
  });
  stops.push(chartLoop.stop);

  // ---- history ----
  let historyKey = '';
  const historyLoop = every(HISTORY_MS, async () => {
    let versions;
    try {
      versions = await getJSON(`${fnPath}/history${base}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) versions = [];
      else throw err;
    }
    const key = versions.length ? `${versions.length}:${versions[versions.length - 1].position}` : '0';
    if (key === historyKey) return;
    historyKey = key;
    renderHistory(versions);
  });
  stops.push(historyLoop.stop);

  function renderHistory(versions) {
    const specTypes = new Set(['function.deployed', 'function.updated']);
    const last = versions[versions.length - 1];
    const removed = last && last.type === 'function.removed';
    const specVersions = versions.filter((v) => specTypes.has(v.type));
    const currentSpec = removed ? null : specVersions[specVersions.length - 1];
    const rows = versions.slice().reverse().map((v) => {
      const list = h('ul', { class: 'changes' }, v.changes.map(change));
      const fieldsCell = v.changes.length > 6 || (v.type === 'function.deployed' && v.changes.length > 2)
        ? h('details', {}, h('summary', { text: `${v.changes.length} fields` }), list)
        : (v.changes.length ? list : h('span', { class: 'muted', text: 'no change' }));
      let action = '';
      if (specTypes.has(v.type) && v !== currentSpec) {
        action = h('button', {
          type: 'button', class: 'rollback', text: `Roll back to v${v.version}`,
          onclick: () => rollback(v),
        });
      }
      return h('tr', { dataset: { version: v.version } },
        h('td', { text: `v${v.version}` }),
        h('td', {}, h('span', { class: 'badge', text: v.type.replace('function.', '') })),
        h('td', { text: v.actor }),
        h('td', { title: stamp(v.time), text: ago(v.time) }),
        h('td', {}, fieldsCell),
        h('td', {}, action));
    });
    historyBody.replaceChildren(...rows);
    if (!rows.length) historyBody.append(h('tr', { class: 'empty' }, h('td', { colspan: 6, text: 'No history.' })));
  }

  async function rollback(version) {
    let past;
    try {
      past = await getJSON(`${fnPath}${query({ namespace: ns, at: version.position })}`);
    } catch (err) {
      toast(`Could not read version ${version.version}: ${err.message}`, 'bad');
      return;
    }
    const body = deploymentOf(past);
    const ok = await confirmDialog({
      title: `Roll back ${name} to v${version.version}?`,
      body: h('div', {},
        h('p', { text: `The function gets the spec it had at version ${version.version} (image ${past.image}); its replica count stays as it is.` })),
      confirm: 'Roll back',
    });
    if (!ok) return;
    try {
      try {
        await call('PUT', '/system/functions', { json: body });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
        await call('POST', '/system/functions', { json: body }); // it was removed meanwhile
      }
      toast(`Rolled back ${name} to the spec of v${version.version}`);
      historyLoop.now();
      statusLoop.now();
    } catch (err) {
      toast(`Rollback failed: ${err.message}`, 'bad');
    }
  }

  deleteButton.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: `Delete ${name}?`,
      body: `This removes ${name} from ${ns} and stops its replicas. Its history stays in the event log.`,
      confirm: 'Delete', danger: true,
    });
    if (!ok) return;
    try {
      await call('DELETE', '/system/functions', { json: { functionName: name, namespace: ns } });
      toast(`Deleted ${name}`);
      ctx.go('#/functions');
    } catch (err) {
      toast(`Delete failed: ${err.message}`, 'bad');
    }
  });

  return () => { for (const stop of stops) stop(); };
}

function pairs(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('span', { class: 'muted', text: 'none' });
  return h('ul', { class: 'plain pairs' }, entries.map(([k, v]) => h('li', {}, h('code', { text: k }), ' = ', h('code', { text: v }))));
}

function renderSpec(box, status) {
  const key = JSON.stringify(deploymentOf(status));
  if (box.isConnected && box.dataset.key === key) return;
  box.dataset.key = key;
  const resources = (r) => (r ? [r.memory ? `memory ${r.memory}` : '', r.cpu ? `cpu ${r.cpu}` : ''].filter(Boolean).join(', ') : '') || 'none';
  const labels = { ...(status.labels || {}) };
  box.replaceChildren(h('dl', { class: 'kv' },
    h('dt', { text: 'Image' }), h('dd', {}, h('code', { id: 'spec-image', text: status.image })),
    h('dt', { text: 'Process' }), h('dd', {}, status.envProcess ? h('code', { text: status.envProcess }) : h('span', { class: 'muted', text: 'image default' })),
    h('dt', { text: 'Environment' }), h('dd', { id: 'spec-env' }, pairs(status.envVars)),
    h('dt', { text: 'Labels' }), h('dd', {}, pairs(labels)),
    h('dt', { text: 'Annotations' }), h('dd', {}, pairs(status.annotations)),
    h('dt', { text: 'Limits' }), h('dd', { text: resources(status.limits) }),
    h('dt', { text: 'Requests' }), h('dd', { text: resources(status.requests) }),
    h('dt', { text: 'Secrets' }), h('dd', { text: (status.secrets || []).join(', ') || 'none' }),
    h('dt', { text: 'Constraints' }), h('dd', { text: (status.constraints || []).join(', ') || 'none' }),
    h('dt', { text: 'Read-only root' }), h('dd', { text: status.readOnlyRootFilesystem ? 'yes' : 'no' })));
}

// ---- the invoke panel ----

function invokePanel(name, ns, invoked) {
  const id = (x) => `invoke-${x}`;
  const method = h('select', { id: id('method') }, ['POST', 'GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => h('option', { text: m })));
  const path = h('input', { id: id('path'), placeholder: '/', spellcheck: 'false', autocomplete: 'off' });
  const search = h('input', { id: id('query'), placeholder: 'a=1&b=2', spellcheck: 'false', autocomplete: 'off' });
  const headers = h('textarea', { id: id('headers'), rows: 2, placeholder: 'Content-Type: text/plain', spellcheck: 'false' });
  const body = h('textarea', { id: id('body'), rows: 4, spellcheck: 'false' });
  const send = h('button', { type: 'submit', class: 'primary', text: 'Invoke' });
  const result = h('div', { class: 'invoke-result', 'aria-live': 'polite', id: id('result') });
  const prefix = invokePath(name, ns);
  const form = h('form', { class: 'invoke-grid' },
    h('label', { for: id('method'), text: 'Method' }), method,
    h('label', { for: id('path'), text: 'Path' }), h('div', {}, h('span', { class: 'muted mono small', text: prefix }), ' ', path),
    h('label', { for: id('query'), text: 'Query' }), search,
    h('label', { for: id('headers'), text: 'Headers' }), headers,
    h('label', { for: id('body'), text: 'Body' }), body,
    h('div', { class: 'row-full form-actions' }, send));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const sent = {};
    for (const line of headers.value.split('\n')) {
      if (!line.trim()) continue;
      const at = line.indexOf(':');
      if (at <= 0) { result.replaceChildren(h('p', { class: 'field-error', text: `Headers: "${line}" is not "Name: value"` })); headers.focus(); return; }
      sent[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    let url = prefix;
    const p = path.value.trim();
    if (p) url += p.startsWith('/') ? p : `/${p}`;
    const q = search.value.trim().replace(/^\?/, '');
    if (q) url += `?${q}`;
    const m = method.value;
    send.disabled = true;
    setText(send, 'Invoking…');
    const started = performance.now();
    try {
      const response = await fetch(url, { method: m, headers: sent, body: ['GET', 'HEAD'].includes(m) ? undefined : body.value, credentials: 'omit' });
      const buffer = await response.arrayBuffer();
      const duration = performance.now() - started;
      const text = new TextDecoder().decode(buffer.slice(0, BODY_SHOWN));
      const headerList = [...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      result.replaceChildren(
        h('p', {},
          h('span', { class: `status-code ${response.ok ? 'ok' : 'bad'}`, id: id('status'), text: `${response.status} ${response.statusText}` }),
          h('span', { class: 'muted', text: ` · ${duration.toFixed(0)} ms · ${bytes(buffer.byteLength)}` })),
        h('details', {}, h('summary', { text: 'Response headers' }), h('pre', { class: 'box', id: id('headers-out'), text: headerList })),
        h('pre', { class: 'box', id: id('response'), text: text + (buffer.byteLength > BODY_SHOWN ? `\n… (${bytes(buffer.byteLength - BODY_SHOWN)} more)` : '') }));
    } catch (err) {
      result.replaceChildren(h('p', { class: 'field-error', text: `The call failed: ${err.message}` }));
    } finally {
      invoked();
      send.disabled = false;
      setText(send, 'Invoke');
    }
  });
  const el = h('section', { class: 'card', 'aria-labelledby': 'h-invoke' },
    h('h2', { id: 'h-invoke', text: 'Invoke' }), form, result);
  return { el };
}

// ---- the live log pane ----

function logPane(name, ns) {
  const box = h('div', { class: 'logs', role: 'log', tabindex: 0, 'aria-label': `Log lines of ${name}`, id: 'log-lines' });
  const hint = h('div', { class: 'hint', text: 'Waiting for log lines…' });
  box.append(hint);
  const followBox = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const pause = h('button', { type: 'button', id: 'log-pause', 'aria-pressed': 'false', text: 'Pause' });
  const instance = h('select', { id: 'log-instance' }, h('option', { value: '', text: 'All replicas' }));
  const state = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const el = h('section', { class: 'card wide', 'aria-labelledby': 'h-logs' },
    h('h2', { id: 'h-logs', text: 'Logs' }),
    h('div', { class: 'log-bar' },
      pause,
      h('label', { for: 'log-follow' }, followBox, 'Follow newest'),
      h('label', { for: 'log-instance' }, 'Replica', instance),
      h('button', { type: 'button', text: 'Clear', onclick: () => { lines.length = 0; box.replaceChildren(); } }),
      state),
    box);

  const lines = [];
  const seen = new Set();
  const known = new Set();
  let since = '';
  let paused = false;
  let stopped = false;
  let abort = null;
  let pending = [];
  let frame = 0;

  function lineEl(line) {
    return h('div', { class: 'line', dataset: { instance: line.instance } },
      h('time', { datetime: line.timestamp, title: line.timestamp, text: clock(line.timestamp) }),
      h('span', { class: 'inst', text: line.instance }),
      h('span', { class: 'text', text: line.text }));
  }

  function visible(line) {
    return !instance.value || line.instance === instance.value;
  }

  function flush() {
    frame = 0;
    if (hint.isConnected) hint.remove();
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    const fresh = pending.filter(visible).map(lineEl);
    pending = [];
    box.append(...fresh);
    while (box.childElementCount > LOG_LINES) box.firstElementChild.remove();
    if (followBox.checked || atBottom) box.scrollTop = box.scrollHeight;
  }

  function onLine(line) {
    const key = `${line.timestamp}|${line.instance}|${line.text}`;
    if (seen.has(key)) return; // the reopened stream repeats lines at `since`
    seen.add(key);
    if (seen.size > LOG_LINES * 2) seen.delete(seen.values().next().value);
    since = line.timestamp;
    lines.push(line);
    if (lines.length > LOG_LINES) lines.shift();
    if (line.instance) addInstance(line.instance);
    pending.push(line);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function addInstance(id) {
    if (known.has(id)) return;
    known.add(id);
    instance.append(h('option', { value: id, text: id }));
  }

  async function follow() {
    while (!stopped && !paused) {
      abort = new AbortController();
      const params = { name, namespace: ns, follow: 'true' };
      if (since) params.since = since; else params.tail = 200;
      try {
        setText(state, 'live');
        const response = await call('GET', `/system/logs${query(params)}`, { signal: abort.signal });
        await readLines(response, onLine);
      } catch (err) {
        if (err.name === 'AbortError') return;
        setText(state, err instanceof ApiError && err.status === 404 ? 'no logs (not deployed)' : `reconnecting (${err.message})`);
        await sleep(3000);
        continue;
      }
      await sleep(1000); // the gateway ends a follow after WRITE_TIMEOUT: reopen from the last line
    }
  }

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    setText(pause, paused ? 'Resume' : 'Pause');
    if (paused) {
      if (abort) abort.abort();
      setText(state, 'paused');
    } else {
      follow();
    }
  });
  instance.addEventListener('change', () => {
    box.replaceChildren(...lines.filter(visible).map(lineEl));
    box.scrollTop = box.scrollHeight;
  });

  follow();
  return {
    el,
    instances(ids) { ids.forEach(addInstance); },
    stop() { stopped = true; if (abort) abort.abort(); if (frame) cancelAnimationFrame(frame); },
  };
}
