// The trade tape: the selected symbol's trades from the trade channel, newest first, coloured
// by the aggressor's side.

import { clock, count, el, emptyRow, num, td } from "/web/js/dom.js";

export const TAPE_ROWS = 200;

export class Tape {
  constructor(tbody) {
    this.tbody = tbody;
    this.symbol = null;
    this.tbody.replaceChildren(emptyRow(3, "No trades yet"));
  }

  setSymbol(symbol) {
    this.symbol = symbol;
    this.tbody.replaceChildren(emptyRow(3, "No trades yet"));
  }

  onTrade(message) {
    if (message.symbol !== this.symbol) return;
    if (message.snapshot) {
      const trades = (message.trades ?? []).slice(-TAPE_ROWS).reverse();
      this.tbody.replaceChildren(...trades.map((t) => row(t)));
      if (!trades.length) this.tbody.append(emptyRow(3, "No trades yet"));
      return;
    }
    this.tbody.querySelector("td.empty")?.parentElement.remove();
    this.tbody.prepend(row(message));
    while (this.tbody.rows.length > TAPE_ROWS) this.tbody.lastElementChild.remove();
  }
}

function row(trade) {
  const side = trade.aggressor === "sell" ? "sell" : trade.aggressor === "buy" ? "buy" : "";
  return el(
    "tr",
    { testid: "tape-row", dataset: { price: trade.price, size: String(trade.size) } },
    td(clock(trade.timestamp), "muted"),
    num(trade.price, side),
    num(count(trade.size)),
  );
}
