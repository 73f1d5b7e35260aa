// The order ticket: every order type, time in force and class the broker takes, fields shown
// by type and class, combinations that are always rejected not offered, an estimate of the cost
// and of the buying power left, client-side checks with a message per field, then
// POST /v2/orders with the user's own strings. Server errors are shown verbatim with their code.

import * as api from "/web/js/api.js";
import { $, $$, el, say } from "/web/js/dom.js";
import { estimate, formatCents } from "/web/js/estimate.js";
import { checkOrder, extendedHoursAllowed, fieldsFor, tifsFor, typesFor } from "/web/js/validate.js";

/** Enable only the `allowed` options of a select; move off an option that is no longer allowed. */
function allow(select, allowed, fallback) {
  for (const option of select.options) {
    option.disabled = !allowed.includes(option.value);
    option.title = option.disabled ? "not possible with this order type and class" : "";
  }
  if (!allowed.includes(select.value)) select.value = allowed.includes(fallback) ? fallback : allowed[0];
}

export class Ticket {
  constructor(form, { assets, position, onPlaced }) {
    this.form = form;
    this.assets = assets; // () => Map(symbol -> asset)
    this.position = position ?? (() => "0"); // (symbol) => signed quantity held, a string
    this.onPlaced = onPlaced;
    this.side = "buy";
    this.quotes = new Map(); // symbol -> {bid, ask, last} from the l1 feed
    this.buyingPower = null;
    this.errors = $("#ticket-errors");
    this.message = $("#ticket-message");
    this.estimateBox = $("#ticket-estimate");
    this.submit = form.querySelector("[data-testid=ticket-submit]");
    for (const button of $$(".side", form)) button.addEventListener("click", () => this.setSide(button.dataset.side));
    form.type.addEventListener("change", () => this.layout());
    form.order_class.addEventListener("change", () => this.layout());
    form.time_in_force.addEventListener("change", () => this.layout());
    form.addEventListener("input", (e) => {
      e.target.removeAttribute("aria-invalid");
      this.showEstimate();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    this.layout();
  }

  setSide(side) {
    this.side = side;
    for (const button of $$(".side", this.form)) button.classList.toggle("active", button.dataset.side === side);
    this.submit.classList.toggle("buy", side === "buy");
    this.submit.classList.toggle("sell", side === "sell");
    this.layout();
  }

  setSymbol(symbol) {
    this.form.symbol.value = symbol;
    this.showEstimate();
  }

  /** An l1 message: the quote the estimate values market orders at. */
  onQuote(message) {
    this.quotes.set(message.symbol, { bid: message.bid, ask: message.ask, last: message.last });
    if (message.symbol === this.form.symbol.value.trim().toUpperCase()) this.showEstimate();
  }

  /** The account (GET /v2/account): its buying power for the estimate. */
  setAccount(account) {
    this.buyingPower = account?.buying_power ?? null;
    this.showEstimate();
  }

  /** Estimated cost (or proceeds) and buying power after the order, as the form changes. */
  showEstimate() {
    const v = this.values();
    const symbol = v.symbol.trim().toUpperCase();
    const e = estimate(
      { ...v, side: this.side },
      this.quotes.get(symbol) ?? {},
      this.position(symbol),
      this.buyingPower,
    );
    const box = this.estimateBox;
    if (e === null) {
      box.replaceChildren();
      delete box.dataset.notional;
      delete box.dataset.after;
      return;
    }
    const what = this.side === "buy" ? "Est. cost" : "Est. proceeds";
    const at = `${v.qty.trim()} @ ${e.price}${e.source === "limit" ? "" : ` (${e.source})`}`;
    const lines = [el("div", { testid: "estimate-notional" }, `${what} ${formatCents(e.notional)}  ${at}`)];
    if (e.after !== null) {
      const effect = e.hold === 0n
        ? `Buying power ${formatCents(e.after)}, unchanged (closes a position)`
        : `Buying power ${formatCents(e.after + e.hold)} → ${formatCents(e.after)}${e.buffered ? " (incl. 5% buffer)" : ""}`;
      lines.push(el("div", { testid: "estimate-buying-power", class: e.after < 0n ? "neg" : "" }, effect));
    }
    box.replaceChildren(...lines);
    box.dataset.notional = formatCents(e.notional);
    box.dataset.after = e.after === null ? "" : formatCents(e.after);
  }

  /** A price picked on the ladder: a limit order at that price. */
  pickPrice(price) {
    const type = this.form.type.value;
    if (type !== "limit" && type !== "stop_limit") {
      this.form.type.value = "limit";
      this.layout();
    }
    this.form.limit_price.value = price;
    this.showEstimate();
    this.form.qty.focus();
  }

  /** A read-only user (an investor) sees the ticket but cannot send: say so in the form. */
  setEnabled(canTrade) {
    this.canTrade = canTrade;
    this.submit.disabled = !canTrade;
    this.submit.title = canTrade ? "" : "your role cannot trade";
    this.form.classList.toggle("read-only", !canTrade);
    say(this.message, canTrade ? "" : "Read-only access: your role cannot place orders.", canTrade ? "" : "error");
  }

  /** Offer only combinations the broker and the venue can take (validate.js says which). */
  restrict() {
    const form = this.form;
    const cls = form.order_class.value;
    allow(form.type, typesFor(cls), "limit");
    allow(form.time_in_force, tifsFor(form.type.value, cls), "day");
    const extended = extendedHoursAllowed(form.type.value, form.time_in_force.value, cls);
    form.extended_hours.disabled = !extended;
    if (!extended) form.extended_hours.checked = false;
  }

  layout() {
    const form = this.form;
    this.restrict();
    const shown = fieldsFor(form.type.value, form.order_class.value);
    for (const [field, visible] of Object.entries(shown)) {
      const box = form.querySelector(`[data-field="${field}"]`);
      if (box) box.hidden = !visible;
    }
    const type = form.type.selectedOptions[0]?.textContent ?? "";
    const cls = form.order_class.value === "simple" ? "" : ` ${form.order_class.value.toUpperCase()}`;
    this.submit.textContent = `${this.side === "buy" ? "Buy" : "Sell"} ${type}${cls}`;
    this.showEstimate();
  }

  values() {
    const form = this.form;
    return {
      symbol: form.symbol.value,
      side: this.side,
      qty: form.qty.value,
      type: form.type.value,
      time_in_force: form.time_in_force.value,
      limit_price: form.limit_price.value,
      stop_price: form.stop_price.value,
      trail_kind: form.trail_kind.value,
      trail: form.trail.value,
      order_class: form.order_class.value,
      take_profit: form.take_profit.value,
      stop_loss: form.stop_loss.value,
      stop_loss_limit: form.stop_loss_limit.value,
      client_order_id: form.client_order_id.value,
      extended_hours: form.extended_hours.checked,
    };
  }

  showErrors(errors) {
    for (const input of $$("[aria-invalid]", this.form)) input.removeAttribute("aria-invalid");
    this.errors.replaceChildren(
      ...errors.map((e) => el("li", { testid: "ticket-error", dataset: { field: e.field } }, e.message)),
    );
    for (const e of errors) {
      const input = this.form.querySelector(`[data-field="${e.field}"] input, [data-field="${e.field}"] select`);
      input?.setAttribute("aria-invalid", "true");
    }
  }

  async send() {
    if (this.canTrade === false) return; // the button is disabled; Enter in a field lands here too
    const values = this.values();
    const asset = this.assets().get(values.symbol.trim().toUpperCase());
    const { errors, body } = checkOrder(values, asset);
    this.showErrors(errors);
    say(this.message, "");
    if (errors.length) return;
    this.submit.disabled = true;
    try {
      const order = await api.post("/v2/orders", body);
      const what = `${order.side} ${order.qty} ${order.symbol} ${order.type}${order.limit_price ? ` @ ${order.limit_price}` : ""}`;
      if (order.status === "rejected") {
        say(this.message, `Rejected by the venue: ${order.reject_reason ?? ""} (${order.reject_code ?? "?"})`, "error");
      } else {
        say(this.message, `Order ${order.status}: ${what}`, "ok");
      }
      this.form.client_order_id.value = "";
      this.onPlaced?.(order);
    } catch (exc) {
      say(this.message, exc instanceof api.ApiError ? exc.text : String(exc), "error");
    } finally {
      this.submit.disabled = this.canTrade === false;
    }
  }
}
