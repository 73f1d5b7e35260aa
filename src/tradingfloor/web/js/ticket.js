// The order ticket: every order type, time in force and class the broker takes, fields shown
// by type and class, client-side checks with a message per field, then POST /v2/orders with the
// user's own strings. Server errors are shown verbatim with their code.

import * as api from "/web/js/api.js";
import { $, $$, el, say } from "/web/js/dom.js";
import { checkOrder, fieldsFor } from "/web/js/validate.js";

export class Ticket {
  constructor(form, { assets, onPlaced }) {
    this.form = form;
    this.assets = assets; // () => Map(symbol -> asset)
    this.onPlaced = onPlaced;
    this.side = "buy";
    this.errors = $("#ticket-errors");
    this.message = $("#ticket-message");
    this.submit = form.querySelector("[data-testid=ticket-submit]");
    for (const button of $$(".side", form)) button.addEventListener("click", () => this.setSide(button.dataset.side));
    form.type.addEventListener("change", () => this.layout());
    form.order_class.addEventListener("change", () => this.layout());
    form.addEventListener("input", (e) => {
      e.target.removeAttribute("aria-invalid");
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
  }

  /** A price picked on the ladder: a limit order at that price. */
  pickPrice(price) {
    const type = this.form.type.value;
    if (type !== "limit" && type !== "stop_limit") {
      this.form.type.value = "limit";
      this.layout();
    }
    this.form.limit_price.value = price;
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

  layout() {
    const form = this.form;
    const shown = fieldsFor(form.type.value, form.order_class.value);
    for (const [field, visible] of Object.entries(shown)) {
      const box = form.querySelector(`[data-field="${field}"]`);
      if (box) box.hidden = !visible;
    }
    const type = form.type.selectedOptions[0]?.textContent ?? "";
    const cls = form.order_class.value === "simple" ? "" : ` ${form.order_class.value.toUpperCase()}`;
    this.submit.textContent = `${this.side === "buy" ? "Buy" : "Sell"} ${type}${cls}`;
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
