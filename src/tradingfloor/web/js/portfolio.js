// Positions with unrealized and intraday P&L (close a position), the account summary (header
// and the Account tab) and the activities list: GET /v2/positions, /v2/account and
// /v2/account/activities. Money is shown as the API's decimal strings.

import * as api from "/web/js/api.js";
import { sign, sub } from "/web/js/decimal.js";
import { $, $$, confirmDialog, count, el, emptyRow, money, num, percent, signed, stamp, td, toast } from "/web/js/dom.js";

export class Portfolio {
  constructor({ onSelect, onChanged }) {
    this.onSelect = onSelect;
    this.onChanged = onChanged;
    this.canTrade = true;
    this.positions = [];
    for (const tab of $$(".portfolio .tab")) {
      tab.addEventListener("click", () => {
        for (const t of $$(".portfolio .tab")) t.classList.toggle("active", t === tab);
        for (const pane of $$(".portfolio [data-pane]")) pane.hidden = pane.dataset.pane !== tab.dataset.tab;
        if (tab.dataset.tab === "activities") this.loadActivities();
      });
    }
  }

  async loadPositions() {
    this.positions = await api.get("/v2/positions");
    const body = $("#positions-body");
    if (!this.positions.length) {
      body.replaceChildren(emptyRow(9, "No positions"));
      return;
    }
    body.replaceChildren(...this.positions.map((p) => this.positionRow(p)));
  }

  positionRow(p) {
    const close = this.canTrade
      ? el("button", { class: "small", testid: "position-close", onclick: () => this.close(p) }, "Close")
      : "";
    return el(
      "tr",
      { testid: "position-row", dataset: { symbol: p.symbol, qty: p.qty }, ondblclick: () => this.onSelect?.(p.symbol) },
      td(p.symbol),
      num(count(p.qty), p.side === "short" ? "neg" : ""),
      num(p.avg_entry_price),
      num(p.current_price),
      num(money(p.market_value)),
      withPct(signed(p.unrealized_pl), p.unrealized_plpc),
      withPct(signed(p.unrealized_intraday_pl), p.unrealized_intraday_plpc),
      signed(p.realized_pl),
      el("td", {}, close),
    );
  }

  async close(p) {
    if (!(await confirmDialog(`Close ${p.qty} ${p.symbol} at market?`))) return;
    try {
      const order = await api.del(`/v2/positions/${encodeURIComponent(p.symbol)}`);
      toast(`Closing order ${order?.status ?? "sent"}: ${order?.side ?? ""} ${order?.qty ?? ""} ${p.symbol}`);
      this.onChanged?.();
    } catch (exc) {
      toast(exc.text ?? String(exc), { error: true });
    }
  }

  async loadAccount() {
    const a = await api.get("/v2/account");
    $("#sum-equity").textContent = money(a.equity);
    $("#sum-bp").textContent = money(a.buying_power);
    $("#sum-cash").textContent = money(a.cash);
    const day = a.last_equity ? sub(a.equity, a.last_equity) : "0";
    const dayCell = $("#sum-daypl");
    dayCell.textContent = money(day);
    dayCell.className = sign(day) > 0 ? "pos" : sign(day) < 0 ? "neg" : "";
    const rows = [
      ["Account", a.account_number],
      ["Status", a.status],
      ["Type", `${a.account_type ?? ""}${a.multiplier && a.multiplier !== "1" ? ` (${a.multiplier}x)` : ""}`],
      ["KYC", a.kyc_status],
      ["Equity", money(a.equity)],
      ["Last equity", money(a.last_equity)],
      ["Cash", money(a.cash)],
      ["Settled cash", money(a.settled_cash)],
      ["Buying power", money(a.buying_power)],
      ["Reg T BP", money(a.regt_buying_power)],
      ["Day-trading BP", money(a.daytrading_buying_power)],
      ["Held for orders", money(a.held_for_orders)],
      ["Long value", money(a.long_market_value)],
      ["Short value", money(a.short_market_value)],
      ["Initial margin", money(a.initial_margin)],
      ["Maint. margin", money(a.maintenance_margin)],
      ["Day trades", String(a.daytrade_count ?? 0)],
      ["Pattern day trader", a.pattern_day_trader ? "yes" : "no"],
      ["Trading blocked", a.trading_blocked ? "YES" : "no"],
      ["Currency", a.currency],
    ];
    $("#account-kv").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
    return a;
  }

  async loadActivities() {
    const list = await api.get("/v2/account/activities", { page_size: 100, direction: "desc" });
    const body = $("#activities-body");
    if (!list.length) {
      body.replaceChildren(emptyRow(6, "No activities"));
      return;
    }
    body.replaceChildren(
      ...list.map((a) =>
        a.activity_type === "FILL"
          ? el(
              "tr",
              { testid: "activity-row", dataset: { type: a.activity_type } },
              td(stamp(a.transaction_time), "muted"),
              td(a.type === "partial_fill" ? "partial fill" : "fill"),
              td(a.symbol),
              td(a.side, a.side),
              num(count(a.qty)),
              num(a.price),
            )
          : el(
              "tr",
              { testid: "activity-row", dataset: { type: a.activity_type } },
              td(a.date, "muted"),
              td(a.activity_type === "CSD" ? "deposit" : a.activity_type === "CSW" ? "withdrawal" : a.activity_type),
              td(a.description || ""),
              td(""),
              num(""),
              signed(a.net_amount),
            ),
      ),
    );
  }
}

function withPct(cell, ratio) {
  if (ratio !== undefined && ratio !== null) cell.title = percent(ratio);
  return cell;
}
