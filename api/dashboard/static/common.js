// Helpers every panel uses: the API with the regulator's key, DOM building without HTML
// strings (no innerHTML: every value is text), and number formats.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// The JSON API, read with a key. A 401 anywhere (the key revoked or expired meanwhile) is
// handed to `onUnauthorized`, which sends the user back to the log-in.
export function makeApi(key, onUnauthorized) {
  async function get(path, params = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store", credentials: "omit",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      throw new ApiError(response.status, body);
    }
    return body;
  }

  // A write (a regulator's act, e.g. acknowledging an alert): JSON in and out, with an
  // Idempotency-Key of its own, so a request retried by the network is done once.
  async function post(path, body = null) {
    const response = await fetch(new URL(path, window.location.origin), {
      method: "POST", cache: "no-store", credentials: "omit",
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json",
        "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: body === null ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      throw new ApiError(response.status, answer);
    }
    return answer;
  }

  // A file the API serves (a report's XLSX or CSV), read with the key and saved by the
  // browser under `filename`: a plain link would carry no key.
  async function download(path, filename) {
    const response = await fetch(new URL(path, window.location.origin), {
      headers: { Authorization: `Bearer ${key}` }, cache: "no-store", credentials: "omit" });
    if (!response.ok) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      throw new ApiError(response.status, await response.json().catch(() => null));
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: filename, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  // Every page of a list, at most `pagesMax` of them: {items, complete, last}.
  async function all(path, params = {}, pagesMax = 10) {
    const items = [];
    let after = null;
    let last = null;
    for (let page = 0; page < pagesMax; page += 1) {
      last = await get(path, { ...params, after });
      items.push(...last.items);
      after = last.next_after;
      if (after === null) return { items, complete: true, last };
    }
    return { items, complete: false, last };
  }
  return { get, all, post, download };
}

// An element with attributes and children (strings become text nodes).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A table cell showing a formatted value and keeping the raw one (tests compare it).
export function cell(field, raw, shown = raw) {
  return el("td", { dataset: { field, value: raw === null ? "" : String(raw) } }, shown ?? "–");
}

// Fen as yuan with two decimals and thousands separators, from an integer number of fen.
export function yuan(fen) {
  if (fen === null || fen === undefined) return "–";
  const negative = fen < 0;
  const whole = Math.floor(Math.abs(fen) / 100).toLocaleString("en-US");
  const cents = String(Math.abs(fen) % 100).padStart(2, "0");
  return `${negative ? "-" : ""}¥${whole}.${cents}`;
}

// Basis points as a percentage with two decimals (10000 bp = 100.00%).
export function percent(bp) {
  if (bp === null || bp === undefined) return "–";
  return `${(bp / 100).toFixed(2)}%`;
}

// A signal's (四查) name in the page's language; its kind as the API names it when the table
// has no name for it (a kind added since).
export function signalName(t, kind) {
  const name = t(`signal.${kind}`);
  return name === `signal.${kind}` ? kind : name;
}

export function tierBadge(t, tier) {
  return el("span", { class: `badge tier-${tier}`, dataset: { tier } }, t(`tier.${tier}`));
}

export function merchantLink(id, name) {
  return el("a", { href: `#merchant/${encodeURIComponent(id)}`, dataset: { merchantId: id } },
    name || id);
}

export function fill(section, field, text, raw) {
  const node = section.querySelector(`[data-field="${field}"]`);
  node.textContent = text ?? "–";
  if (raw !== undefined) node.dataset.value = raw === null ? "" : String(raw);
  return node;
}

// A chart on the panel's canvas (Chart.js, served by Yufu: /dashboard/vendor/chart.js),
// replacing the one drawn before. No animation: what is shown is final at once.
export function chart(section, config) {
  const canvas = section.querySelector("canvas");
  const previous = window.Chart.getChart(canvas);
  if (previous) previous.destroy();
  config.options = { animation: false, responsive: true, maintainAspectRatio: false,
    ...(config.options || {}) };
  return new window.Chart(canvas, config);
}
