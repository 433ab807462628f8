// Small DOM helpers. Text always goes in as text (textContent), never as markup, so nothing a
// function answers or logs can run in the page.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  add(el, children);
  return el;
}

export function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

export function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') el.textContent = value;
    else if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) if (child) el.append(child);
  return el;
}

/** Change text only when it differs (no needless relayout, selections survive). */
export function setText(el, text) {
  const value = text === undefined || text === null ? '' : String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

// ---- formatting ----

export function ago(iso, now = Date.now()) {
  if (!iso) return '';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

export function stamp(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  // milliseconds from the nanosecond text, when there is one
  const frac = /\.(\d{1,3})/.exec(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${(frac ? frac[1] : '0').padEnd(3, '0')}`;
}

export function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

export function millis(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const ms = seconds * 1000;
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// ---- function health ----

/** [kind, words] for a function: all healthy / degraded / down / scaled to zero. */
export function health(replicas, available) {
  if (!replicas) return ['zero', 'scaled to zero'];
  if (available >= replicas) return ['ok', 'all healthy'];
  if (available > 0) return ['degraded', 'degraded'];
  return ['down', 'down'];
}

export function dot(kind, words) {
  return h('span', { class: `dot ${kind}`, role: 'img', 'aria-label': words, title: words });
}

export function setDot(el, kind, words) {
  const cls = `dot ${kind}`;
  if (el.className !== cls) el.className = cls;
  setAttr(el, 'aria-label', words);
  setAttr(el, 'title', words);
}

// ---- toasts and confirmation ----

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), kind === 'bad' ? 8000 : 4000);
}

/** A modal <dialog>: resolves true when confirmed. Focus returns where it was. */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const ok = h('button', { type: 'submit', value: 'ok', class: danger ? 'danger solid' : 'primary', text: confirm });
    const cancel = h('button', { type: 'submit', value: 'cancel', text: 'Cancel' });
    const dialog = h('dialog', { 'aria-labelledby': 'dialog-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dialog-title', text: title }),
        body instanceof Node ? body : h('p', { text: body }),
        h('div', { class: 'form-actions' }, cancel, ok)));
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (back && back.focus) back.focus();
      resolve(dialog.returnValue === 'ok');
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** One "field: before → after" change as list item content. */
export function change({ field, before, after }) {
  const show = (value) => (value === null || value === undefined ? null
    : typeof value === 'string' ? value : JSON.stringify(value));
  const old = show(before);
  const fresh = show(after);
  return h('li', {},
    h('span', { class: 'chg-field', text: field }), ': ',
    old === null ? h('span', { class: 'muted', text: '(none)' }) : h('del', { text: old }),
    ' → ',
    fresh === null ? h('span', { class: 'muted', text: '(none)' }) : h('ins', { text: fresh }));
}
