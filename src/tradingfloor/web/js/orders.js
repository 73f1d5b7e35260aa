// Open orders (cancel, replace in a small dialog, cancel all) and recent orders of the account,
// from GET /v2/orders; refreshed by the app on trade_updates and by a slow poll.

import * as api from "/web/js/api.js";
import { $, $$, clock, confirmDialog, count, el, emptyRow, num, stamp, td, toast } from "/web/js/dom.js";
import { checkReplace, replaceTifs } from "/web/js/validate.js";

const COLUMNS = 11;
// What PATCH /v2/orders/{id} accepts: a working order at the venue (new or partially filled);
// the dialog offers the times in force the order's type and class allow (validate.js
// replaceTifs), and a trailing stop's trail.
const REPLACEABLE = new Set(["new", "partially_filled"]);
const OPEN = new Set(["new", "accepted", "pending_new", "partially_filled", "held", "pending_replace", "pending_cancel", "accepted_for_bidding", "calculated"]);

/** The time of today's orders, date and time of older ones (a narrower column). */
function when(value) {
  const d = new Date(value);
  return !Number.isNaN(d.getTime()) && d.toDateString() === new Date().toDateString() ? clock(value) : stamp(value);
}

export class OrdersPanel {
  constructor({ tbody, assets, onChanged }) {
    this.tbody = tbody;
    this.assets = assets;
    this.onChanged = onChanged;
    this.tab = "open";
    this.open = [];
    this.recent = [];
    this.canTrade = true;
    this.dialog = $("#replace-dialog");
    this.replacing = null;
    for (const tab of $$(".orders .tab")) {
      tab.addEventListener("click", () => {
        this.tab = tab.dataset.tab;
        for (const t of $$(".orders .tab")) t.classList.toggle("active", t === tab);
        if (this.tab === "recent") this.loadRecent();
        this.render();
      });
    }
    $("#cancel-all").addEventListener("click", () => this.cancelAll());
    $("#replace-close").addEventListener("click", () => this.dialog.close());
    $("#replace-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendReplace();
    });
  }

  async load() {
    this.open = await api.get("/v2/orders", { status: "open", limit: 500, direction: "desc" });
    if (this.tab === "recent") await this.loadRecent(false);
    this.render();
    return this.open;
  }

  async loadRecent(render = true) {
    try {
      this.recent = await api.get("/v2/orders", { status: "all", limit: 100, direction: "desc" });
    } catch (exc) {
      toast(exc.text ?? String(exc), { error: true });
    }
    if (render) this.render();
  }

  render() {
    $("#open-count").textContent = this.open.length ? String(this.open.length) : "";
    $("#cancel-all").disabled = !this.open.length || !this.canTrade;
    const list = this.tab === "open" ? this.open : this.recent;
    if (!list.length) {
      this.tbody.replaceChildren(emptyRow(COLUMNS, this.tab === "open" ? "No open orders" : "No orders yet"));
      return;
    }
    this.tbody.replaceChildren(...list.map((o) => this.row(o)));
  }

  row(o) {
    const live = OPEN.has(o.status);
    const actions = el("td", { class: "actions" });
    const buttons = el("div", { class: "row" });
    actions.append(buttons);
    if (live && this.canTrade) {
      if (REPLACEABLE.has(o.status)) {
        buttons.append(el("button", { class: "small", testid: "order-replace", onclick: () => this.openReplace(o) }, "Replace"));
      }
      buttons.append(el("button", { class: "small danger", testid: "order-cancel", onclick: () => this.cancel(o) }, "Cancel"));
    }
    let status = o.status;
    if (o.status === "rejected" && o.reject_reason) status = `rejected: ${o.reject_reason}`;
    return el(
      "tr",
      { testid: "order-row", dataset: { orderId: o.id, symbol: o.symbol, status: o.status, side: o.side, type: o.type } },
      td(when(o.submitted_at || o.created_at), "muted"),
      td(o.symbol),
      td(o.side, o.side),
      td(o.order_class && o.order_class !== "simple" ? `${o.type} ${o.order_class}` : o.type),
      num(count(o.qty)),
      num(o.filled_qty === "0" ? "" : count(o.filled_qty)),
      num(o.limit_price ?? ""),
      num(o.stop_price ?? (o.trail_price ? `trail ${o.trail_price}` : o.trail_percent ? `trail ${o.trail_percent}%` : "")),
      td(o.time_in_force.toUpperCase()),
      el("td", { class: `status status-${o.status}`, title: status }, status),
      actions,
    );
  }

  async cancel(order) {
    try {
      await api.del(`/v2/orders/${order.id}`);
      toast(`Cancel sent: ${order.side} ${order.qty} ${order.symbol}`);
      this.onChanged?.();
    } catch (exc) {
      toast(exc.text ?? String(exc), { error: true });
    }
  }

  async cancelAll() {
    if (!(await confirmDialog(`Cancel all ${this.open.length} open orders?`))) return;
    try {
      const results = await api.del("/v2/orders");
      const failed = (results ?? []).filter((r) => r.status >= 300);
      toast(failed.length ? `${failed.length} orders could not be cancelled` : "Cancel all sent", { error: failed.length > 0 });
      this.onChanged?.();
    } catch (exc) {
      toast(exc.text ?? String(exc), { error: true });
    }
  }

  openReplace(order) {
    this.replacing = order;
    const form = $("#replace-form");
    $("#replace-title").textContent = `${order.side} ${order.qty} ${order.symbol} ${order.type}`;
    form.qty.value = order.qty;
    form.limit_price.value = order.limit_price ?? "";
    form.stop_price.value = order.stop_price ?? "";
    form.trail.value = order.trail_price ?? order.trail_percent ?? "";
    const tifs = replaceTifs(order);
    for (const option of form.time_in_force.options) option.disabled = !tifs.includes(option.value);
    form.time_in_force.value = order.time_in_force;
    form.querySelector('[data-field="limit_price"]').hidden = !order.limit_price;
    form.querySelector('[data-field="stop_price"]').hidden = !order.stop_price || order.type === "trailing_stop";
    form.querySelector('[data-field="trail"]').hidden = order.type !== "trailing_stop";
    $("#replace-errors").replaceChildren();
    this.dialog.showModal();
    form.qty.focus();
    form.qty.select();
  }

  async sendReplace() {
    const order = this.replacing;
    const form = $("#replace-form");
    const values = {
      qty: form.qty.value,
      limit_price: form.limit_price.value,
      stop_price: form.stop_price.value,
      trail: form.trail.value,
      time_in_force: form.time_in_force.value,
    };
    const { errors, body } = checkReplace(order, values, this.assets().get(order.symbol));
    const list = $("#replace-errors");
    list.replaceChildren(...errors.map((e) => el("li", {}, e.message)));
    if (errors.length) return;
    try {
      const replaced = await api.patch(`/v2/orders/${order.id}`, body);
      this.dialog.close();
      toast(`Replaced: now ${replaced.qty} ${replaced.symbol}${replaced.limit_price ? ` @ ${replaced.limit_price}` : ""}`);
      this.onChanged?.();
    } catch (exc) {
      list.replaceChildren(el("li", {}, exc.text ?? String(exc)));
    }
  }
}
