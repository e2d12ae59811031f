// Merchants by tier (红黄蓝): counts, a chart, and each merchant with its reasons, red first.
// Source: GET /v1/tiers (ledger/db/dashboard_queries.py).
import { chart, el, merchantLink, tierBadge } from "../common.js";

const ORDER = { red: 0, yellow: 1, blue: 2 };
const COLOURS = { red: "#d63b3b", yellow: "#e0a800", blue: "#2f6fdf" };

export async function load(section, { api, t }) {
  const { items, complete, last } = await api.all("/v1/tiers", { limit: 1000 });
  const counts = last.by_tier;
  for (const tile of section.querySelectorAll("[data-tier]")) {
    const count = tile.querySelector(".count");
    count.textContent = counts[tile.dataset.tier];
    count.dataset.value = counts[tile.dataset.tier];
  }
  const tiers = ["red", "yellow", "blue"];
  chart(section, {
    type: "doughnut",
    data: { labels: tiers.map((tier) => t(`tier.${tier}`)),
      datasets: [{ data: tiers.map((tier) => counts[tier]),
        backgroundColor: tiers.map((tier) => COLOURS[tier]) }] },
    options: { plugins: { legend: { position: "right" } } },
  });
  items.sort((a, b) => ORDER[a.tier] - ORDER[b.tier] || a.merchant_id.localeCompare(b.merchant_id));
  const body = section.querySelector("tbody");
  body.replaceChildren(...items.map((m) => el("tr", { dataset: { merchantId: m.merchant_id, tier: m.tier } },
    el("td", {}, tierBadge(t, m.tier)),
    el("td", { dataset: { field: "name" } }, merchantLink(m.merchant_id, m.name)),
    el("td", { dataset: { field: "department" } }, m.department),
    el("td", { dataset: { field: "industry" } }, m.industry),
    el("td", { dataset: { field: "reasons" } }, reasons(t, m)),
    el("td", { class: "nowrap", dataset: { field: "tier_changed_at" } }, m.tier_changed_at ? m.tier_changed_at.slice(0, 16).replace("T", " ") : "–"),
  )));
  if (items.length === 0) body.append(el("tr", {}, el("td", { colspan: 6 }, t("tiers.none"))));
  const more = section.querySelector(".more");
  more.hidden = complete;
  more.textContent = complete ? "" : t("app.more_pages", { n: items.length });
}

function reasons(t, m) {
  const parts = [...m.reasons, ...m.hard_blocks.map((block) => t(`block.${block}`))];
  return parts.length ? parts.join("；") : t("tiers.no_reason");
}
