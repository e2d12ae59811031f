// Coverage and exposure: the totals, a chart by department, and a table per grouping the
// API gives (by_industry, by_department; by_street once merchants have one: any `by_*`
// member of the answer becomes a table, titled by the string `coverage.<member>`).
// Source: GET /v1/audit/totals.
import { cell, chart, el, fill, percent, yuan } from "../common.js";

const FIGURES = ["merchants", "cards", "card_liability_fen", "custody_balance_fen", "coverage_ratio_bp"];

function shown(field, value) {
  if (field.endsWith("_fen")) return yuan(value);
  if (field.endsWith("_bp")) return percent(value);
  return value;
}

export async function load(section, { api, t }) {
  const totals = await api.get("/v1/audit/totals");
  for (const field of ["merchants", "card_liability_fen", "custody_balance_fen", "coverage_ratio_bp"]) {
    fill(section, field, shown(field, totals.all[field]), totals.all[field]);
  }
  const byDepartment = totals.by_department;
  chart(section, {
    type: "bar",
    data: { labels: byDepartment.map((g) => g.department), datasets: [
      { label: t("coverage.liability"), backgroundColor: "#e07b39",
        data: byDepartment.map((g) => g.card_liability_fen / 100) },
      { label: t("coverage.custody"), backgroundColor: "#2f6fdf",
        data: byDepartment.map((g) => g.custody_balance_fen / 100) }] },
  });
  const groups = Object.keys(totals).filter((name) => name.startsWith("by_"));
  section.querySelector(".groups").replaceChildren(...groups.map((name) => {
    const key = name.slice(3);
    return el("div", { class: "group", dataset: { group: key } },
      el("h3", {}, t(`coverage.${name}`)),
      el("table", { class: "list" },
        el("thead", {}, el("tr", {}, el("th", {}, t("coverage.group")),
          ...["merchants", "cards", "liability", "custody", "ratio"].map((s) => el("th", {}, t(`coverage.${s}`))))),
        el("tbody", {}, ...totals[name].map((g) => el("tr", { dataset: { key: g[key] } },
          el("td", {}, g[key]), ...FIGURES.map((f) => cell(f, g[f], shown(f, g[f]))))))));
  }));
}
