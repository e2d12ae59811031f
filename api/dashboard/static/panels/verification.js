// Cross-verification (交叉验证) per bank: the latest verification of every custody account,
// summed per bank with the open breaks, then listed, differences first.
// Sources: GET /v1/cross-verifications (every page), GET /v1/breaks?status=open (its
// `by_bank_merchant` summary covers every open break, whatever the page), GET /v1/tiers (the
// merchants' names).
import { cell, el, merchantLink, yuan } from "../common.js";

export async function load(section, { api, t }) {
  const [verified, breaks, merchants] = await Promise.all([
    api.all("/v1/cross-verifications", { limit: 1000 }),
    api.get("/v1/breaks", { status: "open", limit: 1 }),
    api.all("/v1/tiers", { limit: 1000 }),
  ]);
  const names = new Map(merchants.items.map((m) => [m.merchant_id, m.name]));
  const banks = new Map();
  const bank = (id) => {
    if (!banks.has(id)) banks.set(id, { accounts: 0, matches: 0, differences: 0, difference_fen: 0, open: 0, open_fen: 0 });
    return banks.get(id);
  };
  for (const v of verified.items) {
    const b = bank(v.bank_id);
    b.accounts += 1;
    if (v.difference_fen === 0) b.matches += 1;
    else b.differences += 1;
    b.difference_fen += Math.abs(v.difference_fen);
  }
  for (const g of breaks.by_bank_merchant) {
    const b = bank(g.bank_id);
    b.open += g.open;
    b.open_fen += g.amount_fen;
  }
  const ids = [...banks.keys()].sort();
  section.querySelector(".by-bank tbody").replaceChildren(...ids.map((id) => {
    const b = banks.get(id);
    return el("tr", { dataset: { bankId: id } }, el("td", { class: "nowrap" }, id),
      cell("accounts", b.accounts), cell("matches", b.matches), cell("differences", b.differences),
      cell("difference_fen", b.difference_fen, yuan(b.difference_fen)), cell("open", b.open),
      cell("open_fen", b.open_fen, yuan(b.open_fen)));
  }));
  const rows = [...verified.items].sort((a, b) =>
    (a.difference_fen === 0) - (b.difference_fen === 0) || a.bank_id.localeCompare(b.bank_id) || a.id - b.id);
  const body = section.querySelector(".by-account tbody");
  body.replaceChildren(...rows.map((v) => el("tr", { dataset: { merchantId: v.merchant_id, bankId: v.bank_id } },
    el("td", { class: "nowrap" }, v.bank_id), el("td", {}, merchantLink(v.merchant_id, names.get(v.merchant_id))), el("td", {}, v.account),
    el("td", { class: "nowrap" }, v.closing_date), cell("bank_balance_fen", v.bank_balance_fen, yuan(v.bank_balance_fen)),
    cell("ledger_balance_fen", v.ledger_balance_fen, yuan(v.ledger_balance_fen)),
    cell("difference_fen", v.difference_fen, yuan(v.difference_fen)),
    el("td", {}, el("span", { class: `badge result-${v.result}`, dataset: { result: v.result } },
      t(v.result === "match" ? "verification.match" : "verification.mismatch"))))));
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 8 }, t("verification.none"))));
  const more = section.querySelector(".more");
  more.hidden = verified.complete;
  more.textContent = verified.complete ? "" : t("app.more_pages", { n: verified.items.length });
}
