// api.js — the gateway's admin API (/api/v1/, docs/http.md) with the
// bearer token kept in localStorage.

const TOKEN_KEY = 'arbiter.token';

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';  // storage refused (a private window): no token kept
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing to keep it in
  }
}

// One request. Resolves (never rejects) to {ok, status, data, error}:
// status 0 when the gateway did not answer at all.
export async function call(method, path, timeoutMs = 10000) {
  const headers = {Accept: 'application/json'};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {method, headers, cache: 'no-store', signal: abort.signal});
  } catch (e) {
    clearTimeout(timer);
    return {ok: false, status: 0, data: null, error: 'the gateway does not answer'};
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  clearTimeout(timer);
  if (res.ok) return {ok: true, status: res.status, data, error: null};
  return {ok: false, status: res.status, data,
    error: (data && data.error) || `${res.status} ${res.statusText}`};
}

export const get = (path) => call('GET', path);

export const api = {
  stats: () => get('/api/v1/stats'),
  tasks: (query) => get('/api/v1/tasks?' + new URLSearchParams(query)),
  task: (id) => get(`/api/v1/tasks/${id}`),
  flow: (kind, id) => get(`/api/v1/${kind}s/${id}`),
  cancel: (id) => call('DELETE', `/api/v1/tasks/${id}`),
  retry: (id) => call('POST', `/api/v1/tasks/${id}/retry`),
  queueOp: (name, op) => call('POST', `/api/v1/queues/${encodeURIComponent(name)}/${op}`),
  deleteQueue: (name) => call('DELETE', `/api/v1/queues/${encodeURIComponent(name)}`),
};
