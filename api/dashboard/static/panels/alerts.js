// The alerts inbox (预警): the alerts of the key's scope (a district key's: all), those not
// yet acknowledged first, newest first, each with its merchant, kind, severity and the
// signals that raised it; a button acknowledges one (POST /v1/alerts/{id}/acknowledge,
// journaled with the regulator's key), and the inbox is read again.
// Sources: GET /v1/alerts (every page).
import { el, fill, merchantLink, signalName } from "../common.js";

export async function load(section, context) {
  const { api, t } = context;
  const { items, complete } = await api.all("/v1/alerts", { limit: 1000 });
  const open = items.filter((a) => a.acknowledged_at === null);
  fill(section, "unacknowledged", open.length, open.length);
  fill(section, "total", items.length, items.length);
  items.sort((a, b) => (a.acknowledged_at !== null) - (b.acknowledged_at !== null) || b.id - a.id);
  const body = section.querySelector("tbody");
  body.replaceChildren(...items.map((a) => el("tr", { dataset: { alertId: a.id, kind: a.kind,
    acknowledged: String(a.acknowledged_at !== null) } },
    el("td", { class: "nowrap" }, a.created_at.slice(0, 16).replace("T", " ")),
    el("td", { dataset: { field: "merchant" } }, merchantLink(a.merchant_id, a.merchant_name)),
    el("td", { class: "nowrap" }, el("span", { class: `badge severity-${a.severity}`,
      dataset: { field: "kind", value: a.kind } }, t(`alerts.kind.${a.kind}`))),
    el("td", { dataset: { field: "signals", value: a.signals.map((s) => s.kind).join(",") } },
      a.signals.map((s) => `${signalName(t, s.kind)} (${s.value}/${s.threshold})`).join("；") || "–"),
    el("td", {}, a.department, a.street ? ` · ${a.street}` : ""),
    el("td", { class: "nowrap" }, a.acknowledged_at === null
      ? acknowledgeButton(section, context, a)
      : t("alerts.acknowledged_at", { at: a.acknowledged_at.slice(0, 16).replace("T", " ") })))));
  if (items.length === 0) body.append(el("tr", {}, el("td", { colspan: 6 }, t("alerts.none"))));
  const more = section.querySelector(".more");
  more.hidden = complete;
  more.textContent = complete ? "" : t("app.more_pages", { n: items.length });
}

function acknowledgeButton(section, context, alert) {
  const button = el("button", { type: "button", class: "act", dataset: { acknowledge: alert.id } },
    context.t("alerts.acknowledge"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    section.dataset.state = "loading";
    try {
      await context.api.post(`/v1/alerts/${alert.id}/acknowledge`);
      await load(section, context);
      section.dataset.state = "ready";
    } catch (failure) {
      button.disabled = false;
      section.dataset.state = "failed";
      const error = section.querySelector(".panel-error");
      error.hidden = false;
      error.textContent = context.t("app.load_failed") + (failure.message || String(failure));
    }
  });
  return button;
}
