// The dashboard's frame: the string table, the log-in (the key lives in sessionStorage only,
// never a cookie), the two views (the overview, a merchant's detail at #merchant/<id>), and
// each panel's script module, loaded by the panel's name (static/panels/<name>.js).
import { ApiError, makeApi } from "./common.js";

const KEY_ITEM = "yufu.dashboard.key";
// Asked to log in: operator and regulator keys read it; any other role gets 403.
const LOGIN_PROBE = "/v1/tiers";
const lang = document.body.dataset.lang;
let strings = {};
let api = null;

function t(name, values = {}) {
  const text = strings[name] ?? name;
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

function showLogin(message) {
  sessionStorage.removeItem(KEY_ITEM);
  api = null;
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("signed-in").hidden = true;
  document.getElementById("logout").hidden = true;
  const error = document.getElementById("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  document.getElementById("key").focus();
}

async function logIn(key) {
  const candidate = makeApi(key, null);
  try {
    await candidate.get(LOGIN_PROBE, { limit: 1 });
  } catch (error) {
    if (!(error instanceof ApiError)) return showLogin(t("login.unavailable"));
    if (error.status === 401) return showLogin(t("login.wrong_key"));
    if (error.status === 403) return showLogin(t("login.not_regulator"));
    return showLogin(t("login.unavailable"));
  }
  sessionStorage.setItem(KEY_ITEM, key);
  api = makeApi(key, () => showLogin(t("login.wrong_key")));
  document.getElementById("login").hidden = true;
  document.getElementById("signed-in").hidden = false;
  document.getElementById("logout").hidden = false;
  // The key's prefix only (yufu_<prefix>): it names the key in the access log, never its secret.
  document.getElementById("role").textContent = key.split("_").slice(0, 2).join("_");
  route();
}

// The view the address names, with its panels loaded afresh.
async function route() {
  if (!api) return;
  const match = /^#merchant\/(.+)$/.exec(window.location.hash);
  const viewName = match ? "merchant" : "overview";
  const context = { api, t, lang, merchantId: match ? decodeURIComponent(match[1]) : null };
  for (const view of document.querySelectorAll(".view")) {
    view.hidden = view.id !== `view-${viewName}`;
  }
  const toggle = document.getElementById("lang-toggle");
  toggle.href = `?lang=${toggle.hreflang}${window.location.hash}`;
  const view = document.getElementById(`view-${viewName}`);
  view.dataset.ready = "false";
  await Promise.all([...view.querySelectorAll("[data-panel]")].map((section) =>
    loadPanel(section, context)));
  view.dataset.ready = "true";
  if (match) window.scrollTo(0, 0);
}

async function loadPanel(section, context) {
  const error = section.querySelector(".panel-error");
  error.hidden = true;
  section.dataset.state = "loading";
  try {
    const panel = await import(`./panels/${section.dataset.panel}.js`);
    await panel.load(section, context);
    section.dataset.state = "ready";
  } catch (failure) {
    section.dataset.state = "failed";
    error.hidden = false;
    error.textContent = t("app.load_failed") + (failure.message || String(failure));
  }
}

async function start() {
  const response = await fetch(`/dashboard/strings/${lang}.json`, { cache: "no-store" });
  strings = await response.json();
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = document.getElementById("key").value.trim();
    if (!key) return showLogin(t("login.empty"));
    document.getElementById("key").value = "";
    logIn(key);
  });
  document.getElementById("logout").addEventListener("click", () => {
    window.location.hash = "";
    showLogin("");
  });
  window.addEventListener("hashchange", route);
  const kept = sessionStorage.getItem(KEY_ITEM);
  if (kept) await logIn(kept);
  else showLogin("");
  document.body.dataset.started = "true";
}

start();
