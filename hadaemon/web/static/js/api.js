// The HTTP API (docs/http-api.md) for the pages: JSON in and out, the session's CSRF
// token on writes, and a 401 login_required sends the app to the login page.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let csrfToken = null;
let passwordSet = null;  // from the last 401 login_required: true, false, null (not known)
let onLoginRequired = () => {};

function url(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function request(method, path, { query, body, quiet } = {}) {
  const headers = { Accept: "application/json" };
  const options = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let answer;
  try {
    answer = await fetch(url(path, query), options);
  } catch (exc) {
    throw new ApiError(0, "unreachable", `the daemon does not answer (${exc.message})`);
  }
  const text = await answer.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!answer.ok) {
    const code = (data && data.error) || `http_${answer.status}`;
    const message = (data && data.message) || `${answer.status} ${answer.statusText}`;
    const error = new ApiError(answer.status, code, message, data || {});
    if (answer.status === 401 && code === "login_required") {
      if (data && typeof data.password_set === "boolean") passwordSet = data.password_set;
      if (!quiet) {
        csrfToken = null;
        queueMicrotask(() => onLoginRequired(error));
      }
    }
    throw error;
  }
  return data;
}

export const api = {
  get: (path, query) => request("GET", path, { query }),
  put: (path, body) => request("PUT", path, { body }),
  post: (path, body) => request("POST", path, { body: body === undefined ? {} : body }),
  del: (path) => request("DELETE", path),

  /** The current session ({kind, name, csrf_token}), or null when logged out. */
  async session() {
    try {
      const session = await request("GET", "/api/session", { quiet: true });
      csrfToken = session.csrf_token || null;
      return session;
    } catch (exc) {
      if (exc.status === 401) {
        csrfToken = null;
        return null;
      }
      throw exc;
    }
  },

  /** Log in; rejects with ApiError (bad_password, no_password_set, too_many_attempts). */
  async login(password) {
    const answer = await request("POST", "/api/login", { body: { password }, quiet: true });
    csrfToken = answer.csrf_token;
    passwordSet = true;
    return answer;
  },

  async logout() {
    try {
      await request("POST", "/api/logout", { body: {}, quiet: true });
    } finally {
      csrfToken = null;
    }
  },

  /** (app.js) what to do on a 401 login_required. */
  setLoginRequiredHandler(fn) {
    onLoginRequired = fn;
  },

  get csrfToken() {
    return csrfToken;
  },

  /** Whether the daemon has an admin password, as its last 401 login_required said
   * (null before any): false means nobody can log in until one is set. */
  get passwordSet() {
    return passwordSet;
  },
};
