// Stack page: paste or upload a faas-cli stack.yml, see the plan as a diff, apply it, watch
// the functions come up.
//   POST /system/stack/parse        the YAML → {functions, warnings} (reads only)
//   POST /system/apply {dryRun: true}   the plan
//   POST /system/apply               the same functions, appended at once
//   GET  /system/function/{name}?namespace=   every 2 s per planned function, until ready

import { ApiError, call, every, getJSON, query } from './api.js';
import { change, dot, h, health, setDot, setText, toast } from './dom.js';

const PROGRESS_MS = 2000;
const GIVE_UP_MS = 5 * 60 * 1000;
const DRAFT_KEY = 'docker-faas.stack';

export function mount(main, ctx) {
  const ns = ctx.namespace;
  const text = h('textarea', { id: 'stack-text', rows: 14, spellcheck: 'false', placeholder: 'version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  echo:\n    image: docker-faas-fixtures/echo:latest' });
  text.value = sessionStorage.getItem(DRAFT_KEY) || '';
  const file = h('input', { id: 'stack-file', type: 'file', accept: '.yml,.yaml,text/yaml,application/x-yaml' });
  const prune = h('input', { id: 'stack-prune', type: 'checkbox' });
  const planButton = h('button', { type: 'submit', class: 'primary', text: 'Plan' });
  const applyButton = h('button', { type: 'button', text: 'Apply', disabled: true });
  const errors = h('div', { class: 'banner', role: 'alert', id: 'stack-errors' });
  const planBox = h('div', { id: 'stack-plan', 'aria-live': 'polite' },
    h('p', { class: 'muted', text: 'Paste a stack.yml (or choose a file) and press Plan: the gateway shows what would change without changing anything.' }));
  const progress = h('div', { id: 'stack-progress', 'aria-live': 'polite' });
  const form = h('form', { class: 'spec' },
    h('div', { class: 'field' }, h('label', { for: 'stack-text', text: 'stack.yml' }), text,
      h('span', { class: 'hint', text: '${VAR:-default} takes its default; the gateway\u2019s environment is not used. environment_file is not available here.' })),
    h('div', { class: 'field' }, h('label', { for: 'stack-file', text: 'Or upload a file' }), file),
    h('label', { class: 'check', for: 'stack-prune' }, prune,
      `Prune: remove functions of the stack's namespaces that it does not name (functions without a namespace go to ${ns})`),
    h('div', { class: 'form-actions' }, planButton, applyButton));
  main.append(h('div', { class: 'page-head' }, h('h1', { text: 'Stack' })),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-stack' }, h('h2', { id: 'h-stack', text: 'Stack file' }), errors, form),
      h('section', { class: 'card', 'aria-labelledby': 'h-plan' }, h('h2', { id: 'h-plan', text: 'Plan' }), planBox, progress)));

  let planned = null; // the apply body the plan was made for
  let watcher = null;

  file.addEventListener('change', async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    text.value = await chosen.text();
    sessionStorage.setItem(DRAFT_KEY, text.value);
    invalidate();
  });
  text.addEventListener('input', () => { sessionStorage.setItem(DRAFT_KEY, text.value); invalidate(); });
  prune.addEventListener('change', invalidate);

  function invalidate() {
    planned = null;
    applyButton.disabled = true;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setText(errors, '');
    invalidate();
    if (!text.value.trim()) { setText(errors, 'stack: paste a stack.yml or choose a file'); text.focus(); return; }
    planButton.disabled = true;
    try {
      const parsed = await (await call('POST', '/system/stack/parse', { body: text.value, headers: { 'Content-Type': 'application/x-yaml' } })).json();
      const body = { functions: parsed.functions, namespace: ns, prune: prune.checked };
      const plan = await (await call('POST', '/system/apply', { json: { ...body, dryRun: true } })).json();
      renderPlan(plan, parsed.warnings);
      planned = body;
      applyButton.disabled = !plan.plan.some((step) => step.action !== 'unchanged');
    } catch (err) {
      setText(errors, err.message);
      planBox.replaceChildren();
    } finally {
      planButton.disabled = false;
    }
  });

  applyButton.addEventListener('click', async () => {
    if (!planned) return;
    applyButton.disabled = true;
    try {
      const result = await (await call('POST', '/system/apply', { json: planned })).json();
      toast(result.applied ? `Applied at log position ${result.position}` : 'Nothing to change');
      renderPlan(result, [], true);
      watch(result.plan);
    } catch (err) {
      setText(errors, err instanceof ApiError && err.status === 409
        ? `${err.message}\nThe log moved since the plan: plan again.` : err.message);
    } finally {
      planned = null;
    }
  });

  function renderPlan(plan, warnings, applied = false) {
    const counts = {};
    for (const step of plan.plan) counts[step.action] = (counts[step.action] || 0) + 1;
    const words = Object.entries(counts).map(([a, n]) => `${n} ${a}`).join(', ') || 'no functions';
    planBox.replaceChildren(
      h('p', {}, h('strong', { text: applied ? 'Applied: ' : 'Dry run: ' }), words,
        h('span', { class: 'muted', text: ` · namespaces ${plan.namespaces.join(', ') || ns}` })),
      warnings.length ? h('details', {}, h('summary', { text: `${warnings.length} warning${warnings.length === 1 ? '' : 's'}` }),
        h('ul', {}, warnings.map((w) => h('li', { text: w })))) : '',
      h('div', { class: 'plan' }, plan.plan.map((step) => h('div', { class: 'plan-step', dataset: { action: step.action, name: step.name } },
        h('header', {}, h('span', { class: `badge ${step.action}`, text: step.action }),
          h('strong', { text: step.name }), h('span', { class: 'muted', text: step.namespace }),
          step.image ? h('code', { class: 'small', text: step.image }) : '',
          step.replicas !== undefined ? h('span', { class: 'muted small', text: `${step.replicas} replica${step.replicas === 1 ? '' : 's'}` }) : ''),
        step.changes && step.changes.length ? h('ul', { class: 'changes' }, step.changes.map(change)) : ''))));
  }

  function watch(steps) {
    if (watcher) watcher.stop();
    const tracked = steps.filter((s) => s.action !== 'unchanged');
    if (!tracked.length) { progress.replaceChildren(); return; }
    const rows = new Map();
    const list = h('ul', { class: 'plain' });
    for (const step of tracked) {
      const d = dot('zero', 'waiting');
      const words = h('span', { text: 'waiting' });
      const link = h('a', { href: `#/function/${encodeURIComponent(step.namespace)}/${encodeURIComponent(step.name)}`, text: `${step.name}.${step.namespace}` });
      list.append(h('li', { class: 'status-line' }, d, link, ' ', words));
      rows.set(step, { d, words, done: false });
    }
    const heading = h('p', { class: 'muted', text: 'Waiting for the functions…' });
    progress.replaceChildren(h('h3', { text: 'Progress' }), heading, list);
    const started = Date.now();
    watcher = every(PROGRESS_MS, async () => {
      for (const [step, row] of rows) {
        if (row.done) continue;
        let status = null;
        try {
          status = await getJSON(`/system/function/${encodeURIComponent(step.name)}${query({ namespace: step.namespace })}`);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) throw err;
        }
        if (step.action === 'remove') {
          row.done = status === null;
          setDot(row.d, row.done ? 'ok' : 'degraded', row.done ? 'removed' : 'removing');
          setText(row.words, row.done ? 'removed' : 'removing');
          continue;
        }
        if (!status) { setText(row.words, 'not there yet'); continue; }
        const [kind, words] = health(status.replicas, status.availableReplicas);
        row.done = !status.rollout && (status.replicas === 0 || status.availableReplicas >= status.replicas);
        setDot(row.d, kind, words);
        setText(row.words, `${status.availableReplicas}/${status.replicas} ${row.done ? 'ready' : status.lastError ? `— ${status.lastError}` : 'starting'}`);
      }
      const waiting = [...rows.values()].filter((r) => !r.done).length;
      if (!waiting) {
        setText(heading, 'Done: every function is as the stack says.');
        watcher.stop();
      } else if (Date.now() - started > GIVE_UP_MS) {
        setText(heading, `${waiting} still not ready after 5 minutes; see their pages.`);
        watcher.stop();
      } else {
        setText(heading, `Waiting for ${waiting} of ${rows.size}…`);
      }
    });
  }

  return () => { if (watcher) watcher.stop(); };
}
