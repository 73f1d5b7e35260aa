// The watchlist: one row per listed asset with live bid / ask / last / volume from the l1
// channel. Click (or arrow keys) selects the symbol the other panels show.

import { cmp, isDecimal } from "/web/js/decimal.js";
import { count, el, emptyRow, num, td } from "/web/js/dom.js";

export class Watchlist {
  constructor(tbody, { onSelect }) {
    this.tbody = tbody;
    this.onSelect = onSelect;
    this.rows = new Map(); // symbol -> {tr, cells}
    this.symbols = [];
    this.selected = null;
  }

  setAssets(assets) {
    this.symbols = assets.map((a) => a.symbol);
    this.rows.clear();
    this.tbody.replaceChildren();
    if (!assets.length) {
      this.tbody.append(emptyRow(5, "No listed assets"));
      return;
    }
    for (const asset of assets) {
      const cells = { bid: num("–"), ask: num("–"), last: num("–"), volume: num("") };
      const name = td(asset.symbol);
      if (!asset.tradable) name.append(el("span", { class: "muted small", title: "not tradable" }, " ⊘"));
      const tr = el(
        "tr",
        {
          testid: "watchlist-row",
          dataset: { symbol: asset.symbol },
          onclick: () => this.onSelect(asset.symbol),
        },
        name,
        cells.bid,
        cells.ask,
        cells.last,
        cells.volume,
      );
      this.rows.set(asset.symbol, { tr, cells, last: null });
      this.tbody.append(tr);
    }
    if (this.selected) this.select(this.selected);
  }

  select(symbol) {
    this.selected = symbol;
    for (const [s, row] of this.rows) row.tr.classList.toggle("selected", s === symbol);
    this.rows.get(symbol)?.tr.scrollIntoView({ block: "nearest" });
  }

  /** Move the selection up (-1) or down (+1). */
  step(delta) {
    if (!this.symbols.length) return;
    const at = this.symbols.indexOf(this.selected);
    const next = this.symbols[(at + delta + this.symbols.length) % this.symbols.length];
    this.onSelect(next);
  }

  onL1(message) {
    const row = this.rows.get(message.symbol);
    if (!row) return;
    const { cells } = row;
    cells.bid.textContent = message.bid ?? "–";
    cells.bid.title = message.bid ? `${count(message.bidSize)} shares` : "";
    cells.ask.textContent = message.ask ?? "–";
    cells.ask.title = message.ask ? `${count(message.askSize)} shares` : "";
    cells.last.textContent = message.last ?? "–";
    cells.volume.textContent = count(message.volume);
    if (row.last && isDecimal(message.last) && isDecimal(row.last) && !message.snapshot) {
      const change = cmp(message.last, row.last);
      if (change !== 0) {
        cells.last.classList.remove("flash-up", "flash-down");
        void cells.last.offsetWidth; // restart the animation
        cells.last.classList.add(change > 0 ? "flash-up" : "flash-down");
      }
    }
    row.last = message.last;
  }
}
