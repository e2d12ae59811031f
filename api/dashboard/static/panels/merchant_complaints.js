// A merchant's complaints (12345 / 12315 工单, and those received directly), newest first:
// channel, when received, category, the amount at stake, where it stands and its deadlines.
// Source: GET /v1/complaints?merchant_id= (every page).
import { cell, el, fill, yuan } from "../common.js";

export async function load(section, { api, t, merchantId }) {
  const { items, complete } = await api.all("/v1/complaints", { merchant_id: merchantId, limit: 1000 });
  items.sort((a, b) => b.id - a.id);
  fill(section, "count", `(${items.length})`, items.length);
  const body = section.querySelector("tbody");
  body.replaceChildren(...items.map((c) => el("tr", { dataset: { complaintId: c.id, status: c.status } },
    el("td", {}, c.id),
    el("td", { class: "nowrap", dataset: { field: "channel", value: c.channel } },
      c.channel === "direct" ? t("merchant_complaints.direct") : c.channel),
    el("td", { class: "nowrap" }, c.received_on), el("td", {}, c.category),
    cell("amount_fen", c.amount_fen, yuan(c.amount_fen)),
    el("td", { class: "nowrap", dataset: { field: "status", value: c.status } }, t(`merchant_complaints.status.${c.status}`)),
    el("td", { class: "nowrap" }, c.accept_by), el("td", { class: "nowrap" }, c.close_by),
    el("td", { class: "nowrap" }, c.closed_on ?? "–"))));
  if (items.length === 0) body.append(el("tr", {}, el("td", { colspan: 9 }, t("merchant_complaints.none"))));
  const more = section.querySelector(".more");
  more.hidden = complete;
  more.textContent = complete ? "" : t("app.more_pages", { n: items.length });
}
