// A merchant's detail view (#merchant/<id>): its filing, tier and reasons, exposure, and its
// tier history as journaled. The signals panel (四查) plugs in beside it, as a panel of the
// merchant view of its own (api/dashboard/__init__.py PANELS).
// Sources: GET /v1/merchants/{id}, GET /v1/merchants/{id}/tier-changes.
import { el, fill, percent, tierBadge, yuan } from "../common.js";

export async function load(section, { api, t, merchantId }) {
  const id = encodeURIComponent(merchantId);
  const [m, history] = await Promise.all([
    api.get(`/v1/merchants/${id}`),
    api.all(`/v1/merchants/${id}/tier-changes`, { limit: 1000 }),
  ]);
  section.dataset.merchantId = m.id;
  fill(section, "name", m.name, m.name);
  fill(section, "tier", "", m.tier).replaceChildren(tierBadge(t, m.tier));
  for (const field of ["credit_code", "industry", "department", "bank_id", "custody_account"]) {
    fill(section, field, m[field], m[field]);
  }
  fill(section, "status", t(`status.${m.status}`), m.status);
  fill(section, "hard_blocks", list(t, m.hard_blocks.map((b) => t(`block.${b}`))), m.hard_blocks.join(","));
  const x = m.exposure;
  fill(section, "card_liability_fen", yuan(x.card_liability_fen), x.card_liability_fen);
  fill(section, "custody_balance_fen", yuan(x.custody_balance_fen), x.custody_balance_fen);
  fill(section, "coverage", `${percent(x.coverage_ratio_bp)} (${percent(x.required_ratio_bp)})`, x.coverage_ratio_bp);
  fill(section, "risk_signals", list(t, x.risk_signals.map((s) => t(`signal.${s}`))), x.risk_signals.join(","));
  const v = x.last_cross_verification;
  fill(section, "last_cross_verification", v
    ? `${v.closing_date}: ${t(v.result === "match" ? "verification.match" : "verification.mismatch")} ${yuan(v.difference_fen)}`
    : t("merchant.none"), v ? v.difference_fen : null);
  const body = section.querySelector(".history tbody");
  body.replaceChildren(...history.items.map((c) => el("tr", { dataset: { seq: c.journal_seq } },
    el("td", {}, c.journal_seq), el("td", {}, c.ts.slice(0, 19).replace("T", " ")),
    el("td", {}, tierBadge(t, c.previous_tier), " → ", tierBadge(t, c.tier)),
    el("td", { dataset: { field: "reasons" } },
      list(t, [...c.reasons, ...c.hard_blocks.map((b) => t(`block.${b}`))])),
    el("td", {}, c.actor_role ?? "–"))));
  section.querySelector(".empty").hidden = history.items.length > 0;
}

function list(t, parts) {
  return parts.length ? parts.join("；") : t("merchant.none");
}
