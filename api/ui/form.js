// Deploy and edit form. Checked here first (name, image, KEY=value lines); then the gateway
// checks everything again and its 400 message, which starts with the field's name
// ("image: …", "labels.com.openfaas.scale.min: …", "limits.memory: …"), is shown next to that
// field. Nothing is appended when the gateway refuses.
//   GET  /system/function/{name}?namespace=   the current spec (edit)
//   GET  /system/secrets?namespace=           secret names to choose from
//   POST /system/functions (deploy), PUT /system/functions (edit)

import { ApiError, call, deploymentOf, getJSON, query } from './api.js';
import { h, setText } from './dom.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// the API's field names → the form's inputs
const FIELDS = {
  service: 'f-service', image: 'f-image', namespace: 'f-namespace', envProcess: 'f-envProcess',
  envVars: 'f-envVars', labels: 'f-labels', annotations: 'f-annotations', secrets: 'f-secrets',
  constraints: 'f-constraints', 'limits.memory': 'f-limits-memory', 'limits.cpu': 'f-limits-cpu',
  limits: 'f-limits-memory', 'requests.memory': 'f-requests-memory', 'requests.cpu': 'f-requests-cpu',
  requests: 'f-requests-memory', readOnlyRootFilesystem: 'f-readOnly', function: 'f-service',
};

/** The input a server message is about: the longest known prefix of its first word. */
export function fieldOf(message) {
  const head = /^[^\s:]+/.exec(message);
  if (!head) return null;
  const parts = head[0].split('.');
  for (let n = parts.length; n > 0; n -= 1) {
    const id = FIELDS[parts.slice(0, n).join('.')];
    if (id) return id;
  }
  return null;
}

export function mountDeploy(main, ctx) {
  return mountForm(main, ctx, null);
}

export function mountEdit(main, ctx, [ns, name]) {
  return mountForm(main, ctx, { ns, name });
}

function mountForm(main, ctx, editing) {
  const ns = editing ? editing.ns : ctx.namespace;
  const title = editing ? `Edit ${editing.name}` : 'Deploy a function';
  ctx.title(title);
  const controls = {};
  const errors = {};
  const input = (id, props = {}) => {
    const tag = props.tag || 'input';
    delete props.tag;
    const el = h(tag, { id, name: id, 'aria-describedby': `${id}-error ${id}-hint`, spellcheck: 'false', autocomplete: 'off', ...props });
    controls[id] = el;
    return el;
  };
  const field = (id, label, control, hint = '') => {
    errors[id] = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
    return h('div', { class: 'field', dataset: { field: id } },
      h('label', { for: id, text: label }), control,
      hint ? h('span', { class: 'hint', id: `${id}-hint`, text: hint }) : '',
      errors[id]);
  };
  const secretsBox = h('div', { class: 'checks', id: 'f-secrets', role: 'group', 'aria-labelledby': 'f-secrets-legend', 'aria-describedby': 'f-secrets-error', tabindex: -1 });
  controls['f-secrets'] = secretsBox;
  errors['f-secrets'] = h('p', { class: 'field-error', id: 'f-secrets-error', 'aria-live': 'polite' });
  const summary = h('div', { class: 'banner', role: 'alert', id: 'form-error' });
  const submit = h('button', { type: 'submit', class: 'primary', text: editing ? 'Save changes' : 'Deploy' });
  const form = h('form', { class: 'spec', novalidate: true },
    summary,
    h('div', { class: 'pair' },
      field('f-service', 'Name', input('f-service', { value: editing ? editing.name : '', readonly: !!editing, required: true }),
        'lower-case letters, digits and -, at most 63'),
      field('f-namespace', 'Namespace', input('f-namespace', { value: ns, readonly: true }))),
    field('f-image', 'Image', input('f-image', { required: true, placeholder: 'docker-faas-fixtures/echo:latest' })),
    field('f-envProcess', 'Process (fprocess)', input('f-envProcess', { placeholder: 'the image default' })),
    field('f-envVars', 'Environment', input('f-envVars', { tag: 'textarea', rows: 3, placeholder: 'NAME=value' }), 'one NAME=value per line'),
    h('div', { class: 'pair' },
      field('f-labels', 'Labels', input('f-labels', { tag: 'textarea', rows: 3, placeholder: 'com.openfaas.scale.min=1' }), 'one key=value per line'),
      field('f-annotations', 'Annotations', input('f-annotations', { tag: 'textarea', rows: 3 }), 'one key=value per line')),
    h('fieldset', {}, h('legend', { text: 'Limits' }),
      h('div', { class: 'pair' },
        field('f-limits-memory', 'Memory', input('f-limits-memory', { placeholder: '128Mi' })),
        field('f-limits-cpu', 'CPU', input('f-limits-cpu', { placeholder: '500m' })))),
    h('fieldset', {}, h('legend', { text: 'Requests' }),
      h('div', { class: 'pair' },
        field('f-requests-memory', 'Memory', input('f-requests-memory', { placeholder: '64Mi' })),
        field('f-requests-cpu', 'CPU', input('f-requests-cpu', { placeholder: '100m' })))),
    h('fieldset', {}, h('legend', { id: 'f-secrets-legend', text: 'Secrets' }), secretsBox, errors['f-secrets']),
    field('f-constraints', 'Constraints', input('f-constraints', { tag: 'textarea', rows: 2 }), 'one per line'),
    h('div', { class: 'field' },
      h('label', { class: 'check', for: 'f-readOnly' }, input('f-readOnly', { type: 'checkbox' }), 'Read-only root filesystem'),
      errors['f-readOnly'] = h('p', { class: 'field-error', id: 'f-readOnly-error' })),
    h('div', { class: 'form-actions' }, submit,
      h('a', { class: 'button', href: editing ? `#/function/${encodeURIComponent(ns)}/${encodeURIComponent(editing.name)}` : '#/functions', text: 'Cancel' })));
  main.append(h('div', { class: 'page-head' }, h('h1', { text: title })), form);

  let original = null;
  let stopped = false;

  async function load() {
    let chosen = [];
    if (editing) {
      try {
        original = await getJSON(`/system/function/${encodeURIComponent(editing.name)}${query({ namespace: ns })}`);
      } catch (err) {
        setText(summary, `Could not read ${editing.name}: ${err.message}`);
        submit.disabled = true;
        return;
      }
      if (stopped) return;
      const body = deploymentOf(original);
      controls['f-image'].value = body.image;
      controls['f-envProcess'].value = body.envProcess || '';
      controls['f-envVars'].value = lines(body.envVars);
      controls['f-labels'].value = lines(body.labels);
      controls['f-annotations'].value = lines(body.annotations);
      controls['f-limits-memory'].value = body.limits?.memory || '';
      controls['f-limits-cpu'].value = body.limits?.cpu || '';
      controls['f-requests-memory'].value = body.requests?.memory || '';
      controls['f-requests-cpu'].value = body.requests?.cpu || '';
      controls['f-constraints'].value = (body.constraints || []).join('\n');
      controls['f-readOnly'].checked = !!body.readOnlyRootFilesystem;
      chosen = body.secrets || [];
    }
    let names = [];
    try {
      names = (await getJSON(`/system/secrets${query({ namespace: ns })}`)).map((s) => s.name);
    } catch (err) {
      console.warn(err);
    }
    if (stopped) return;
    const all = [...new Set([...names, ...chosen])].sort();
    secretsBox.replaceChildren(...(all.length ? all.map((secret) => h('label', {},
      h('input', { type: 'checkbox', value: secret, checked: chosen.includes(secret), name: 'secret' }),
      secret, names.includes(secret) ? '' : h('span', { class: 'muted', text: ' (missing)' })))
      : [h('span', { class: 'muted', text: `No secrets in ${ns}.` })]));
  }

  function clearErrors() {
    setText(summary, '');
    for (const [id, el] of Object.entries(errors)) {
      setText(el, '');
      if (controls[id]) controls[id].removeAttribute('aria-invalid');
    }
  }

  function showError(id, message) {
    if (!id || !errors[id]) { setText(summary, message); return; }
    setText(errors[id], errors[id].textContent ? `${errors[id].textContent}\n${message}` : message);
    controls[id].setAttribute('aria-invalid', 'true');
  }

  function focusFirstError() {
    const first = Object.keys(errors).find((id) => errors[id].textContent);
    if (first && controls[first]) controls[first].focus();
    else summary.scrollIntoView({ block: 'nearest' });
  }

  /** The FunctionDeployment body, or null after showing what is wrong. */
  function collect() {
    const problems = [];
    const value = (id) => controls[id].value.trim();
    const service = value('f-service');
    if (!service) problems.push(['f-service', 'service: a name is required']);
    else if (service.length > 63 || !DNS_LABEL.test(service)) {
      problems.push(['f-service', `service: '${service}' is not a valid name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit`]);
    }
    const image = value('f-image');
    if (!image) problems.push(['f-image', 'image: an image reference is required']);
    else if (/\s/.test(image)) problems.push(['f-image', `image: '${image}' must not contain white space`]);
    const maps = {};
    for (const [id, key] of [['f-envVars', 'envVars'], ['f-labels', 'labels'], ['f-annotations', 'annotations']]) {
      const [map, problem] = parseLines(controls[id].value, key);
      if (problem) problems.push([id, problem]);
      maps[key] = map;
    }
    for (const [id, message] of problems) showError(id, message);
    if (problems.length) {
      setText(summary, 'Some fields need a change before this can be sent.');
      return null;
    }
    const body = { service, image, namespace: ns, labels: maps.labels, annotations: maps.annotations };
    if (value('f-envProcess')) body.envProcess = value('f-envProcess');
    if (Object.keys(maps.envVars).length) body.envVars = maps.envVars;
    const secrets = [...secretsBox.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
    if (secrets.length) body.secrets = secrets;
    const constraints = controls['f-constraints'].value.split('\n').map((x) => x.trim()).filter(Boolean);
    if (constraints.length) body.constraints = constraints;
    for (const kind of ['limits', 'requests']) {
      const memory = value(`f-${kind}-memory`);
      const cpu = value(`f-${kind}-cpu`);
      if (memory || cpu) body[kind] = { ...(memory ? { memory } : {}), ...(cpu ? { cpu } : {}) };
    }
    if (controls['f-readOnly'].checked) body.readOnlyRootFilesystem = true;
    return body;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const body = collect();
    if (!body) { focusFirstError(); return; }
    submit.disabled = true;
    try {
      await call(editing ? 'PUT' : 'POST', '/system/functions', { json: body });
      ctx.go(`#/function/${encodeURIComponent(ns)}/${encodeURIComponent(body.service)}`);
    } catch (err) {
      if (!(err instanceof ApiError)) {
        setText(summary, `The gateway did not answer: ${err.message}`);
      } else if (err.status === 409) {
        showError(editing ? null : 'f-service', err.message);
        setText(summary, `Not saved: ${err.message}`);
      } else {
        for (const line of err.message.split('\n')) showError(fieldOf(line), line);
        if (!summary.textContent) setText(summary, 'Not saved: the gateway refused a value (see the field below).');
      }
      focusFirstError();
    } finally {
      submit.disabled = false;
    }
  });

  load();
  if (!editing) controls['f-service'].focus();
  return () => { stopped = true; };
}

function lines(map) {
  return Object.entries(map || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

/** KEY=value lines → object; [map, problem naming the field and line]. */
function parseLines(text, field) {
  const map = {};
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i += 1) {
    const row = rows[i].trim();
    if (!row) continue;
    const at = row.indexOf('=');
    if (at <= 0) return [map, `${field}: line ${i + 1}: expected ${field === 'envVars' ? 'NAME' : 'key'}=value, got "${row}"`];
    map[row.slice(0, at).trim()] = row.slice(at + 1);
  }
  return [map, null];
}
