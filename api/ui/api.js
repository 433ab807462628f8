// Every request the dashboard makes goes through here, to the gateway's own API: the same
// /system endpoints faas-cli uses (plus a few read-only helpers, see docs/ui.md). The
// browser sends the basic-auth credentials it was given for /ui/.

export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

const listeners = new Set();

/** Be told whether the gateway answers (true) or not (an error message). */
export function onConnection(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function connection(state) {
  for (const listener of listeners) listener(state);
}

/** fetch() that throws ApiError with the server's plain-text message for a non-2xx answer. */
export async function call(method, path, { json, body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal, credentials: 'same-origin' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name !== 'AbortError') connection('The gateway does not answer');
    throw err;
  }
  connection(true);
  if (!response.ok) {
    const text = (await response.text()).trim();
    throw new ApiError(response.status, text || `${response.status} ${response.statusText}`);
  }
  return response;
}

export async function getJSON(path, options) {
  return (await call('GET', path, options)).json();
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Read an NDJSON response line by line until it ends (or its request is aborted). */
export async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line.trim()) onLine(JSON.parse(line));
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) onLine(JSON.parse(buffer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `tick` now and then every `ms` milliseconds after each call has finished (never two at
 * once), and not at all while the tab is hidden: a background tab costs the gateway nothing.
 * Returns {stop(), now()}; now() runs it at once (after a change the user made).
 */
export function every(ms, tick) {
  let timer = null;
  let stopped = false;
  let running = null;
  let again = false;
  const run = async () => {
    clearTimeout(timer);
    timer = null;
    if (stopped || document.hidden) return;
    if (running) { again = true; return; }
    running = (async () => {
      try { await tick(); } catch (err) { if (err.name !== 'AbortError') console.warn(err); }
    })();
    await running;
    running = null;
    if (stopped) return;
    if (again) { again = false; run(); return; }
    if (!document.hidden) timer = setTimeout(run, ms);
  };
  const onVisibility = () => { if (!document.hidden && !timer && !running) run(); };
  document.addEventListener('visibilitychange', onVisibility);
  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
    now: run,
  };
}

/** The FunctionDeployment body that re-creates a FunctionStatus (its spec, not its state). */
export function deploymentOf(status) {
  const labels = { ...(status.labels || {}) };
  if (labels.faas_function === status.name) delete labels.faas_function; // the gateway adds it
  const body = {
    service: status.name,
    image: status.image,
    namespace: status.namespace,
    labels,
    annotations: { ...(status.annotations || {}) },
  };
  if (status.envProcess) body.envProcess = status.envProcess;
  if (status.envVars) body.envVars = { ...status.envVars };
  if (status.secrets) body.secrets = [...status.secrets];
  if (status.constraints) body.constraints = [...status.constraints];
  if (status.limits) body.limits = { ...status.limits };
  if (status.requests) body.requests = { ...status.requests };
  if (status.readOnlyRootFilesystem) body.readOnlyRootFilesystem = true;
  return body;
}

export const DEFAULT_NAMESPACE = 'openfaas-fn';

/** The invocation path of a function: /function/name, or name.namespace outside the default. */
export function invokePath(name, namespace) {
  return `/function/${encodeURIComponent(name)}${namespace && namespace !== DEFAULT_NAMESPACE ? `.${encodeURIComponent(namespace)}` : ''}`;
}
