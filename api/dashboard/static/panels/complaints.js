// Complaints (12345 / 12315) by department: received, 受理率 and 按时办结率 each as its exact
// fraction and its rate, overdue items, open items by age, the register's two parts (routed
// in vs received directly), 退单 and 错单; a chart of both rates. The window is the one the
// answer names (the last 90 days to today unless asked otherwise).
// Source: GET /v1/complaints/stats/departments (ledger/db/complaint_queries.py).
import { cell, chart, el, percent } from "../common.js";

function fraction(rate) {
  return `${rate.numerator}/${rate.denominator}`;
}

export async function load(section, { api, t }) {
  const answer = await api.get("/v1/complaints/stats/departments");
  const windowNote = section.querySelector("[data-field=window]");
  windowNote.textContent = t("complaints.window", { from: answer.from, to: answer.to, as_of: answer.as_of });
  Object.assign(windowNote.dataset, { from: answer.from, to: answer.to, asOf: answer.as_of });
  const rows = answer.items;
  const buckets = rows.length ? rows[0].open_by_age_days.map((b) => b.bucket) : [];
  section.querySelectorAll("thead th.age").forEach((th, i) => {
    th.textContent = buckets[i] ? t("complaints.age_days", { bucket: buckets[i] }) : "";
  });
  chart(section, {
    type: "bar",
    data: { labels: rows.map((r) => r.department), datasets: [
      { label: t("complaints.acceptance"), backgroundColor: "#2f6fdf",
        data: rows.map((r) => (r.acceptance_rate.rate_bp ?? 0) / 100) },
      { label: t("complaints.on_time"), backgroundColor: "#1f8a4c",
        data: rows.map((r) => (r.on_time_closure_rate.rate_bp ?? 0) / 100) }] },
    options: { scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } } },
  });
  const body = section.querySelector("tbody");
  body.replaceChildren(...rows.map((r) => el("tr", { dataset: { department: r.department } },
    el("td", { class: "nowrap" }, r.department), cell("received", r.received),
    cell("acceptance", fraction(r.acceptance_rate)),
    cell("acceptance_rate_bp", r.acceptance_rate.rate_bp, percent(r.acceptance_rate.rate_bp)),
    cell("on_time", fraction(r.on_time_closure_rate)),
    cell("on_time_rate_bp", r.on_time_closure_rate.rate_bp, percent(r.on_time_closure_rate.rate_bp)),
    cell("overdue", r.overdue),
    ...r.open_by_age_days.map((b) => cell(`open_${b.bucket}`, b.open)),
    cell("routed_received", r.register.routed.received), cell("routed_open", r.register.routed.open),
    cell("direct_received", r.register.direct.received), cell("direct_open", r.register.direct.open),
    cell("returned", r.returned), cell("rerouted_away", r.rerouted_away))));
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 17 }, t("complaints.none"))));
}
