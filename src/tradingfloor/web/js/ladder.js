// The depth ladder: the top 20 price levels of each side from the l2 channel, asks above the
// spread and bids below, with a depth bar per level and the caller's own resting quantity.
// An l2 update lists changed levels; size 0 removes a level (docs/marketdata-ws.md).

import { cmp, norm, sub } from "/web/js/decimal.js";
import { count, el, num } from "/web/js/dom.js";

export const DEPTH = 20;
const CENTRE_AFTER_MS = 10_000; // after a manual scroll, re-centre on the spread this much later

export class Ladder {
  constructor(tbody, { onPick }) {
    this.tbody = tbody;
    this.onPick = onPick;
    this.symbol = null;
    this.bids = new Map(); // norm(price) -> [price, size, orders]
    this.asks = new Map();
    this.own = { buy: new Map(), sell: new Map() }; // norm(price) -> leaves qty
    this.pending = false;
    this.scrolledAt = 0; // the user's last scroll: the ladder stops centring itself for a while
    this.scroller = tbody.closest(".scroll");
    this.scroller?.addEventListener("wheel", () => (this.scrolledAt = Date.now()), { passive: true });
    this.scroller?.addEventListener("dblclick", () => {
      this.scrolledAt = 0;
      this.centre();
    });
    this.render();
  }

  setSymbol(symbol) {
    this.symbol = symbol;
    this.scrolledAt = 0;
    this.bids.clear();
    this.asks.clear();
    this.schedule();
  }

  onL2(message) {
    if (message.symbol !== this.symbol) return;
    if (message.snapshot) {
      this.bids.clear();
      this.asks.clear();
    }
    apply(this.bids, message.bids);
    apply(this.asks, message.asks);
    this.schedule();
  }

  /** Mark the caller's open orders of this symbol (limit prices with leaves quantity). */
  setOwnOrders(orders) {
    this.own = { buy: new Map(), sell: new Map() };
    for (const o of orders) {
      if (o.symbol !== this.symbol || !o.limit_price) continue;
      const leaves = BigInt(o.qty) - BigInt(o.filled_qty);
      if (leaves <= 0n) continue;
      const side = this.own[o.side];
      const key = norm(o.limit_price);
      side.set(key, (side.get(key) ?? 0n) + leaves);
    }
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const asks = sorted(this.asks, 1).slice(0, DEPTH);
    const bids = sorted(this.bids, -1).slice(0, DEPTH);
    const deepest = Math.max(1, ...asks.map((l) => l[1]), ...bids.map((l) => l[1]));
    const rows = [];
    for (let i = DEPTH - 1; i >= 0; i -= 1) rows.push(this.row("ask", asks[i], deepest));
    rows.push(this.spreadRow(bids[0], asks[0]));
    for (let i = 0; i < DEPTH; i += 1) rows.push(this.row("bid", bids[i], deepest));
    this.tbody.replaceChildren(...rows);
    if (Date.now() - this.scrolledAt > CENTRE_AFTER_MS) this.centre();
  }

  /** Scroll the spread row to the middle of the panel. */
  centre() {
    const spread = this.tbody.querySelector("tr.spread");
    if (!this.scroller || !spread) return;
    this.scroller.scrollTop = spread.offsetTop - (this.scroller.clientHeight - spread.offsetHeight) / 2;
  }

  row(side, level, deepest) {
    if (!level) return el("tr", { class: `${side} blank` }, num(""), num(""), num(""), num(""), num(""), num(""));
    const [price, size, orders] = level;
    const mine = this.own[side === "bid" ? "buy" : "sell"].get(norm(price));
    const depth = `${Math.round((size / deepest) * 100)}%`;
    const sizeCell = num(count(size), "size");
    sizeCell.style.setProperty("--depth", depth);
    const cells =
      side === "bid"
        ? [num(mine ? count(mine) : "", "mine"), num(orders), sizeCell, num(price, "price"), num(""), num("")]
        : [num(mine ? count(mine) : "", "mine"), num(""), num(""), num(price, "price"), sizeCell, num(orders)];
    return el(
      "tr",
      {
        class: `${side}${mine ? " own" : ""}`,
        testid: `ladder-${side}-row`,
        dataset: { price, size: String(size) },
        title: mine ? `your orders: ${mine} shares` : null,
        onclick: () => this.onPick?.(price, side),
      },
      cells,
    );
  }

  spreadRow(bestBid, bestAsk) {
    let text = this.symbol ? "no quotes" : "";
    if (bestBid && bestAsk) text = `spread ${sub(bestAsk[0], bestBid[0])}`;
    else if (bestBid || bestAsk) text = "one-sided book";
    return el("tr", { class: "spread", testid: "ladder-spread" }, el("td", { colspan: 6 }, text));
  }
}

function apply(book, levels) {
  for (const [price, size, orders] of levels ?? []) {
    const key = norm(price);
    if (size === 0) book.delete(key);
    else book.set(key, [price, size, orders]);
  }
}

function sorted(book, direction) {
  return [...book.values()].sort((a, b) => direction * cmp(a[0], b[0]));
}
