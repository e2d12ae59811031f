// A merchant's signals (四查: 查资金流水、查投诉记录、查经营状态、查舆情信息): its tier and the tier its
// standing signals give, whether its releases are held, the overrides, each standing signal
// with its value, threshold and source, and every signal raised and cleared, as journaled.
// Sources: GET /v1/merchants/{id}/risk, GET /v1/merchants/{id}/signals (every page).
import { el, fill, signalName, tierBadge } from "../common.js";

export async function load(section, { api, t, merchantId }) {
  const id = encodeURIComponent(merchantId);
  const [risk, history] = await Promise.all([
    api.get(`/v1/merchants/${id}/risk`),
    api.all(`/v1/merchants/${id}/signals`, { limit: 1000 }),
  ]);
  fill(section, "tier", "", risk.tier).replaceChildren(tierBadge(t, risk.tier));
  fill(section, "computed_tier", "", risk.computed_tier).replaceChildren(tierBadge(t, risk.computed_tier));
  fill(section, "releases_held", t(risk.releases_held ? "signals.held" : "signals.not_held"), risk.releases_held);
  fill(section, "assessed_on", risk.assessed_on ?? t("merchant.none"), risk.assessed_on);
  const overrides = risk.overrides.filter((o) => o.ended_seq === null);
  fill(section, "overrides", overrides.length
    ? overrides.map((o) => `${t(`tier.${o.tier}`)}: ${o.reason}${o.expires_on ? ` (→ ${o.expires_on})` : ""}`).join("；")
    : t("merchant.none"), overrides.length);
  const standing = section.querySelector(".standing tbody");
  standing.replaceChildren(...risk.signals.map((s) => el("tr", { dataset: { kind: s.kind } },
    el("td", { class: "nowrap" }, t(`signals.check.${s.check}`)),
    el("td", { dataset: { field: "kind", value: s.kind } }, signalName(t, s.kind)),
    el("td", { dataset: { field: "value", value: s.value } }, s.value),
    el("td", { dataset: { field: "threshold", value: s.threshold } }, s.threshold),
    el("td", {}, s.source))));
  if (risk.signals.length === 0) standing.append(el("tr", {}, el("td", { colspan: 5 }, t("signals.none"))));
  const past = section.querySelector(".history tbody");
  past.replaceChildren(...history.items.map((s) => el("tr", { dataset: { seq: s.journal_seq, kind: s.kind } },
    el("td", {}, s.journal_seq), el("td", { class: "nowrap" }, s.observed_on),
    el("td", {}, signalName(t, s.kind)),
    el("td", { dataset: { field: "state", value: s.state } }, t(`signals.${s.state}`)),
    el("td", {}, s.value), el("td", {}, s.threshold), el("td", {}, s.source))));
  if (history.items.length === 0) past.append(el("tr", {}, el("td", { colspan: 7 }, t("signals.no_history"))));
}
