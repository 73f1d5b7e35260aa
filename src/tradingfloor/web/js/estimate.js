// The order ticket's estimate: what an order costs (a buy) or brings in (a sell), and what it
// does to buying power, valued the way the broker's pre-trade check values it (docs/broker.md,
// "Buying power"): a limit order at its limit (a sell at the better of its limit and the bid),
// a stop at its stop price plus the market buffer, a market order (and a trailing stop) at the
// ask for a buy or the bid for a sell (else the last trade) plus the market buffer. Only the part
// that opens or increases a position holds buying power; selling shares you hold holds none.
// All money is BigInt cents: prices are decimal strings, never floats.

import { parse } from "/web/js/decimal.js";

/** Basis points added to stop, trailing-stop and market orders (RiskLimits.market_order_buffer_bps). */
export const MARKET_BUFFER_BPS = 500n;
const BPS = 10_000n;

/** The BigInt cents of a decimal string, rounded up (away from zero); null if not a decimal. */
export function toCents(text) {
  const p = parse(text);
  if (p === null) return null;
  return ceilDiv(p.n * 100n, 10n ** BigInt(p.scale));
}

function ceilDiv(a, b) {
  const q = a / b;
  return a % b !== 0n && a > 0n === b > 0n ? q + 1n : q;
}

/** Cents of `qty` shares (a BigInt) at `price` (a decimal string), rounded up; null if not a price. */
export function notionalCents(qty, price) {
  const p = parse(price);
  if (p === null) return null;
  return ceilDiv(qty * p.n * 100n, 10n ** BigInt(p.scale));
}

/** "-1,234.05" for -123405n cents. */
export function formatCents(cents) {
  const neg = cents < 0n;
  const digits = (neg ? -cents : cents).toString().padStart(3, "0");
  const whole = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${neg ? "-" : ""}${whole}.${digits.slice(-2)}`;
}

const positive = (text) => {
  const p = parse(text);
  return p !== null && p.n > 0n;
};

const better = (a, b) => {
  // the higher of two decimal strings (a sell is valued at the better of its limit and the bid)
  const [x, y] = [parse(a), parse(b)];
  const scale = BigInt(Math.max(x.scale, y.scale));
  return x.n * 10n ** (scale - BigInt(x.scale)) >= y.n * 10n ** (scale - BigInt(y.scale)) ? a : b;
};

/**
 * The price an order is valued at: `{price, source, buffered}`, or null when the ticket does not
 * say enough (no valid price, or no quote for a market order). `v` holds the ticket's strings
 * (side, type, order_class, limit_price, stop_price, take_profit); `quote` has bid, ask, last.
 */
export function priceBasis(v, quote = {}) {
  const buy = v.side === "buy";
  if (v.order_class === "oco") {
    // an exit pair: valued at its take-profit limit
    return positive(v.take_profit) ? { price: v.take_profit.trim(), source: "take profit", buffered: false } : null;
  }
  if (v.type === "limit" || v.type === "stop_limit") {
    if (!positive(v.limit_price)) return null;
    const limit = v.limit_price.trim();
    if (buy) return { price: limit, source: "limit", buffered: false };
    if (v.type === "stop_limit") {
      return positive(v.stop_price) ? { price: better(limit, v.stop_price.trim()), source: "limit", buffered: false } : null;
    }
    return positive(quote.bid) ? { price: better(limit, quote.bid), source: "limit", buffered: false } : { price: limit, source: "limit", buffered: false };
  }
  if (v.type === "stop") {
    return positive(v.stop_price) ? { price: v.stop_price.trim(), source: "stop", buffered: true } : null;
  }
  const side = buy ? "ask" : "bid";
  if (positive(quote[side])) return { price: quote[side], source: side, buffered: true };
  if (positive(quote.last)) return { price: quote.last, source: "last", buffered: true };
  return null;
}

/**
 * The estimate of a ticket, or null when it cannot be made (no whole quantity or no price).
 * `position` is the signed quantity held in the symbol (a string, "0" if none) and
 * `buyingPower` the account's buying power (a decimal string, or null when not known).
 * Returns BigInt cents: `notional` (qty x price), `hold` (what the order holds of buying power,
 * with the market buffer where it applies), and `after` (buying power less the hold, or null),
 * plus `price`, `source` and `closing` (shares of the order that close the position).
 */
export function estimate(v, quote, position, buyingPower) {
  if (!/^\d+$/.test((v.qty ?? "").trim()) || /^0+$/.test(v.qty.trim())) return null;
  const qty = BigInt(v.qty.trim());
  const basis = priceBasis(v, quote);
  if (basis === null) return null;
  const held = BigInt(/^-?\d+$/.test(position ?? "") ? position : "0");
  const closeable = v.side === "sell" ? held : -held;
  const closing = closeable > 0n ? (qty < closeable ? qty : closeable) : 0n;
  const notional = notionalCents(qty, basis.price);
  let hold = notionalCents(qty - closing, basis.price);
  if (basis.buffered) hold = ceilDiv(hold * (BPS + MARKET_BUFFER_BPS), BPS);
  const power = buyingPower === null || buyingPower === undefined ? null : toCents(buyingPower);
  return {
    notional,
    hold,
    after: power === null ? null : power - hold,
    price: basis.price,
    source: basis.source,
    buffered: basis.buffered,
    closing,
  };
}
