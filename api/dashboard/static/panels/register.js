// A merchant's register (备案台账): its street (属地), address and premises, how many people of
// each role are registered (the people themselves are pseudonyms, never shown), whether a
// ban (黑名单) is in force on one of its people or its premises, and its amendments (变更),
// each field changed (a person's before and after are pseudonyms: only the change is shown).
// Sources: GET /v1/merchants/{id}, GET /v1/merchants/{id}/amendments (every page),
// GET /v1/bans?active=true (every page: the bans in force, matched here against the
// merchant's people and premises).
import { el, fill } from "../common.js";

const ROLES = ["legal_representative", "director", "supervisor", "manager"];
const SHOWN = new Set(["street", "address"]);  // the fields whose values are shown

export async function load(section, { api, t, merchantId }) {
  const id = encodeURIComponent(merchantId);
  const [m, amendments, bans] = await Promise.all([
    api.get(`/v1/merchants/${id}`),
    api.all(`/v1/merchants/${id}/amendments`, { limit: 1000 }),
    api.all("/v1/bans", { active: true, limit: 1000 }),
  ]);
  fill(section, "street", m.street ?? t("register.none"), m.street);
  fill(section, "address", m.address ?? t("register.none"), m.address);
  fill(section, "premises", m.premises ?? t("register.none"), m.premises);
  const counts = ROLES.map((role) => [role, m.people.filter((p) => p.role === role).length]);
  fill(section, "people", counts.filter(([, n]) => n).map(([role, n]) => `${t(`register.role.${role}`)} ${n}`)
    .join("；") || t("register.none"), m.people.length);
  const roles = new Map(m.people.map((p) => [p.person_id, p.role]));
  const hits = bans.items.filter((b) => (b.kind === "person" && roles.has(b.subject))
    || (b.kind === "premises" && b.subject === m.premises));
  fill(section, "banned", hits.length
    ? hits.map((b) => `${b.kind === "premises" ? t("register.premises") : t(`register.role.${roles.get(b.subject)}`)}: ${b.reason} (${b.source}, ${b.starts_on})`).join("；")
    : t("register.not_banned"), hits.length > 0);
  const body = section.querySelector(".amendments tbody");
  body.replaceChildren(...amendments.items.map((a) => el("tr", { dataset: { seq: a.journal_seq } },
    el("td", {}, a.journal_seq), el("td", { class: "nowrap" }, a.amended_on),
    el("td", { dataset: { field: "changes", value: Object.keys(a.changes).sort().join(",") } },
      Object.entries(a.changes).map(([field, change]) => SHOWN.has(field)
        ? `${t(`register.field.${field}`)}: ${change.before ?? "–"} → ${change.after ?? "–"}`
        : t(`register.field.${field}`)).join("；")),
    el("td", {}, a.reason))));
  if (amendments.items.length === 0) body.append(el("tr", {}, el("td", { colspan: 4 }, t("register.no_amendments"))));
}
