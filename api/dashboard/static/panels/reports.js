// The routines' reports (日管控、周排查、月调度, 季度报告) this key may read, newest first: kind,
// period, scope, when made and the signed tree head it names (its size), with its XLSX and
// CSV, in the page's language, downloaded with the key.
// Sources: GET /v1/reports (every page); the files: GET /v1/reports/{id}.xlsx|.csv?lang=.
import { el } from "../common.js";

export async function load(section, { api, t, lang }) {
  const { items, complete } = await api.all("/v1/reports", { limit: 1000 });
  items.sort((a, b) => b.id - a.id);
  const body = section.querySelector("tbody");
  body.replaceChildren(...items.map((r) => el("tr", { dataset: { reportId: r.id, kind: r.kind } },
    el("td", { class: "nowrap", dataset: { field: "kind", value: r.kind } }, t(`reports.kind.${r.kind}`)),
    el("td", { class: "nowrap", dataset: { field: "period", value: r.period.label } }, r.period.label),
    el("td", { dataset: { field: "scope", value: r.scope.name ?? "" } },
      r.scope.name ?? t("reports.district")),
    el("td", { class: "nowrap" }, r.made_at.slice(0, 16).replace("T", " ")),
    el("td", { dataset: { field: "tree_size", value: r.tree_head.tree_size } }, r.tree_head.tree_size),
    el("td", { class: "nowrap" }, ...["xlsx", "csv"].map((suffix) => {
      const button = el("button", { type: "button", class: "act", dataset: { download: suffix } },
        suffix.toUpperCase());
      button.addEventListener("click", () => api.download(`/v1/reports/${r.id}.${suffix}?lang=${lang}`,
        `yufu-${r.kind}-${r.period.label}-${r.id}.${suffix}`));
      return button;
    })))));
  if (items.length === 0) body.append(el("tr", {}, el("td", { colspan: 6 }, t("reports.none"))));
  const more = section.querySelector(".more");
  more.hidden = complete;
  more.textContent = complete ? "" : t("app.more_pages", { n: items.length });
}
