// The admin view: instruments and their session phase (halt / resume, price band editor),
// members' kill switches (/api/admin/venue/...), customers with KYC decisions, accounts with
// deposits, and users (create, disable, enable). Refreshed while the view is shown.

import * as api from "/web/js/api.js";
import { $, $$, confirmDialog, el, emptyRow, money, num, say, stamp, td, toast } from "/web/js/dom.js";

const POLL_MS = 5_000;

/**
 * Replace `body`'s rows by `rows` but keep what the user is typing: an input or select whose
 * value differs from the one the page rendered (or that has the focus) keeps its value, and its
 * focus, in the new row with the same `dataset[key]`. The venue list is re-rendered every few
 * seconds: without this a half-typed band would go back to the old one, and "Set" send that.
 */
function replaceRows(body, key, rows) {
  const active = document.activeElement;
  const edits = [];
  for (const field of body.querySelectorAll("input, select")) {
    const rendered = field.tagName === "SELECT"
      ? ([...field.options].find((o) => o.defaultSelected) ?? field.options[0])?.value
      : field.defaultValue;
    const focused = field === active;
    if (field.value === rendered && !focused) continue;
    const row = field.closest("tr");
    edits.push({
      row: row?.dataset[key],
      id: field.getAttribute("data-testid"),
      value: field.value,
      focused,
      selection: focused && field.tagName === "INPUT" ? [field.selectionStart, field.selectionEnd] : null,
    });
  }
  body.replaceChildren(...rows);
  for (const edit of edits) {
    const row = [...body.rows].find((r) => r.dataset[key] === edit.row);
    const field = row && edit.id ? row.querySelector(`[data-testid="${edit.id}"]`) : null;
    if (!field) continue;
    field.value = edit.value;
    if (edit.focused) {
      field.focus();
      if (edit.selection) field.setSelectionRange(...edit.selection);
    }
  }
}

export class AdminView {
  constructor() {
    this.timer = null;
    this.customers = [];
    this.canVenue = false;
    this.canUsers = false;
    for (const button of $$("[data-reload]")) button.addEventListener("click", () => this.reload(button.dataset.reload));
    $("#customer-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createCustomer(e.target);
    });
    $("#user-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createUser(e.target);
    });
  }

  /** `permissions` from /api/me decide which sections work. */
  setPermissions(permissions) {
    this.canVenue = permissions.includes("admin_venue");
    this.canUsers = permissions.includes("manage_users");
    this.canCustomers = permissions.includes("manage_customers");
  }

  show() {
    this.reload("all");
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (!document.hidden && api.rateLimitWait() === 0) this.reload("venue");
    }, POLL_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async reload(what) {
    const all = what === "all";
    const jobs = [];
    if ((all || what === "venue") && this.canVenue) jobs.push(this.loadInstruments(), this.loadMembers());
    // accounts and users name their customers: those load first
    const customers = (all || what === "customers") && this.canCustomers ? this.loadCustomers() : Promise.resolve();
    const later = customers.then(() =>
      Promise.allSettled([
        (all || what === "accounts") && this.canCustomers ? this.loadAccounts() : null,
        (all || what === "users") && this.canUsers ? this.loadUsers() : null,
      ]),
    );
    await Promise.allSettled([...jobs, later]);
  }

  // --- venue --------------------------------------------------------------------------------

  async loadInstruments() {
    const body = $("#admin-instruments-body");
    try {
      const list = await api.get("/api/admin/venue/instruments");
      if (!list.length) body.replaceChildren(emptyRow(6, "No instruments"));
      else replaceRows(body, "symbol", list.map((i) => this.instrumentRow(i)));
    } catch (exc) {
      body.replaceChildren(emptyRow(6, exc.text ?? String(exc)));
    }
  }

  instrumentRow(i) {
    const halted = i.phase === "halted";
    const bps = el("input", { value: String(i.band_bps), inputmode: "numeric", testid: "band-bps", title: "band in basis points (0 = off)" });
    const action = el(
      "select",
      { testid: "band-action" },
      el("option", { value: "reject", selected: i.band_action === "reject" }, "reject"),
      el("option", { value: "pause", selected: i.band_action === "pause" }, "pause"),
    );
    const save = el("button", { class: "small", testid: "band-save", onclick: () => this.saveBand(i.symbol, bps.value, action.value) }, "Set");
    const toggle = halted
      ? el("button", { class: "small ok", testid: "instrument-resume", onclick: () => this.phase(i.symbol, "resume") }, "Resume")
      : el("button", { class: "small danger", testid: "instrument-halt", onclick: () => this.phase(i.symbol, "halt") }, "Halt");
    return el(
      "tr",
      { testid: "instrument-row", dataset: { symbol: i.symbol, phase: i.phase } },
      td(i.symbol),
      el("td", {}, el("span", { class: `phase ${i.phase}`, testid: "instrument-phase", title: i.halt_reason || null }, i.phase)),
      num(i.tick_size),
      num(i.reference_price ?? "–"),
      el("td", { class: "row" }, bps, el("span", { class: "muted" }, "bps"), action, save),
      el("td", {}, toggle),
    );
  }

  async phase(symbol, verb) {
    const message = $("#admin-venue-message");
    try {
      const body = verb === "halt" ? { reason: "halted from the web terminal" } : {};
      const inst = await api.post(`/api/admin/venue/instruments/${encodeURIComponent(symbol)}/${verb}`, body);
      say(message, `${symbol}: ${inst.phase}`, "ok");
    } catch (exc) {
      say(message, `${symbol}: ${exc.text ?? exc}`, "error");
    }
    await this.loadInstruments();
  }

  async saveBand(symbol, bpsText, action) {
    const message = $("#admin-venue-message");
    const text = bpsText.trim();
    if (!/^\d+$/.test(text)) {
      say(message, `${symbol}: the band is a whole number of basis points (0 turns it off).`, "error");
      return;
    }
    try {
      const inst = await api.put(`/api/admin/venue/instruments/${encodeURIComponent(symbol)}/price-band`, {
        band_bps: Number.parseInt(text, 10),
        band_action: action,
      });
      say(message, `${symbol}: band ${inst.band_bps} bps, ${inst.band_action}`, "ok");
    } catch (exc) {
      say(message, `${symbol}: ${exc.text ?? exc}`, "error");
    }
    await this.loadInstruments();
  }

  async loadMembers() {
    const body = $("#admin-members-body");
    try {
      const list = await api.get("/api/admin/venue/members");
      if (!list.length) body.replaceChildren(emptyRow(3, "No members"));
      else body.replaceChildren(...list.map((m) => this.memberRow(m)));
    } catch (exc) {
      body.replaceChildren(emptyRow(3, exc.text ?? String(exc)));
    }
  }

  memberRow(m) {
    const on = m.kill_switch;
    return el(
      "tr",
      { testid: "member-row", dataset: { member: m.member, killSwitch: String(on) } },
      td(m.member),
      el("td", {}, el("span", { class: `badge ${on ? "on" : "off"}` }, on ? "active" : "off")),
      el(
        "td",
        {},
        el(
          "button",
          { class: `small ${on ? "ok" : "danger"}`, testid: "kill-switch-toggle", onclick: () => this.killSwitch(m.member, !on) },
          on ? "Release" : "Kill",
        ),
      ),
    );
  }

  async killSwitch(member, active) {
    if (active && !(await confirmDialog(`Activate the kill switch of ${member}? Its orders are cancelled and new ones refused.`))) return;
    try {
      const answer = await api.put(`/api/admin/venue/members/${encodeURIComponent(member)}/kill-switch`, { active });
      toast(`${member}: kill switch ${answer.kill_switch ? "active" : "released"}`);
    } catch (exc) {
      toast(`${member}: ${exc.text ?? exc}`, { error: true });
    }
    await this.loadMembers();
  }

  // --- customers and accounts ---------------------------------------------------------------

  async loadCustomers() {
    const body = $("#admin-customers-body");
    try {
      this.customers = await api.get("/api/customers", { limit: 1000 });
      this.fillCustomerSelect();
      if (!this.customers.length) body.replaceChildren(emptyRow(5, "No customers"));
      else body.replaceChildren(...this.customers.map((c) => this.customerRow(c)));
    } catch (exc) {
      body.replaceChildren(emptyRow(5, exc.text ?? String(exc)));
    }
  }

  customerRow(c) {
    const decide = (status) => () => this.kyc(c, status);
    return el(
      "tr",
      { testid: "customer-row", dataset: { customerId: c.id, name: c.name, kyc: c.kyc_status } },
      td(c.name),
      td(c.email, "muted"),
      el("td", { title: c.kyc_note || "" }, el("span", { class: `badge ${c.kyc_status}`, testid: "customer-kyc" }, c.kyc_status)),
      num(String(c.account_ids.length)),
      el(
        "td",
        { class: "row" },
        c.kyc_status !== "approved" ? el("button", { class: "small ok", testid: "kyc-approve", onclick: decide("approved") }, "Approve") : "",
        c.kyc_status !== "rejected" ? el("button", { class: "small danger", testid: "kyc-reject", onclick: decide("rejected") }, "Reject") : "",
        c.account_ids.length ? "" : el("button", { class: "small", testid: "open-account", onclick: () => this.openAccount(c) }, "Open account"),
      ),
    );
  }

  async kyc(customer, status) {
    const message = $("#admin-customers-message");
    try {
      const c = await api.post(`/api/customers/${customer.id}/kyc`, { status, note: "decided in the web terminal" });
      say(message, `${c.name}: KYC ${c.kyc_status}`, "ok");
    } catch (exc) {
      say(message, `${customer.name}: ${exc.text ?? exc}`, "error");
    }
    await Promise.allSettled([this.loadCustomers(), this.loadAccounts()]);
  }

  async createCustomer(form) {
    const message = $("#admin-customers-message");
    const name = form.name.value.trim();
    const email = form.email.value.trim();
    if (!name || !/^[^@\s]+@[^@\s]+$/.test(email)) {
      say(message, "A customer needs a name and an email address.", "error");
      return;
    }
    try {
      const c = await api.post("/api/customers", { name, email });
      say(message, `Customer ${c.name} created (KYC ${c.kyc_status}).`, "ok");
      form.reset();
    } catch (exc) {
      say(message, exc.text ?? String(exc), "error");
    }
    await this.loadCustomers();
  }

  async openAccount(customer) {
    const message = $("#admin-customers-message");
    try {
      const a = await api.post(`/api/customers/${customer.id}/accounts`, { account_type: "cash" });
      say(message, `${customer.name}: account ${a.account_number} opened.`, "ok");
    } catch (exc) {
      say(message, `${customer.name}: ${exc.text ?? exc}`, "error");
    }
    await Promise.allSettled([this.loadCustomers(), this.loadAccounts()]);
  }

  async loadAccounts() {
    const body = $("#admin-accounts-body");
    try {
      const list = await api.get("/api/accounts", { limit: 1000 });
      const names = new Map(this.customers.map((c) => [c.id, c.name]));
      if (!list.length) body.replaceChildren(emptyRow(7, "No accounts"));
      else replaceRows(body, "accountId", list.map((a) => this.accountRow(a, names.get(a.customer_id))));
    } catch (exc) {
      body.replaceChildren(emptyRow(7, exc.text ?? String(exc)));
    }
  }

  accountRow(a, name) {
    const amount = el("input", { placeholder: "amount", inputmode: "decimal", testid: "deposit-amount" });
    const go = el("button", { class: "small", testid: "deposit-submit", onclick: () => this.deposit(a, amount.value) }, "Deposit");
    return el(
      "tr",
      { testid: "account-row", dataset: { accountId: a.id } },
      td(a.account_number),
      td(name ?? a.customer_id.slice(0, 8)),
      td(a.account_type),
      td(a.trading_blocked ? `${a.status} (blocked)` : a.status),
      num(money(a.cash)),
      num(money(a.equity)),
      el("td", { class: "row" }, amount, go),
    );
  }

  async deposit(account, text) {
    const message = $("#admin-accounts-message");
    const amount = text.trim();
    if (!/^\d+(\.\d{1,2})?$/.test(amount) || /^0+(\.0*)?$/.test(amount)) {
      say(message, "A deposit is a positive amount of dollars with at most two decimals.", "error");
      return;
    }
    try {
      const t = await api.post(`/api/accounts/${account.id}/deposits`, { amount });
      say(message, `Deposited ${t.amount}; cash now ${t.cash}.`, "ok");
    } catch (exc) {
      say(message, exc.text ?? String(exc), "error");
    }
    await this.loadAccounts();
  }

  // --- users --------------------------------------------------------------------------------

  fillCustomerSelect() {
    const select = $("#user-form").customer_id;
    const chosen = select.value;
    select.replaceChildren(
      el("option", { value: "" }, "(no customer)"),
      ...this.customers.map((c) => el("option", { value: c.id }, c.name)),
    );
    select.value = chosen;
  }

  async loadUsers() {
    const body = $("#admin-users-body");
    try {
      const list = await api.get("/api/users");
      const names = new Map(this.customers.map((c) => [c.id, c.name]));
      body.replaceChildren(...list.map((u) => this.userRow(u, names)));
    } catch (exc) {
      body.replaceChildren(emptyRow(7, exc.text ?? String(exc)));
    }
  }

  userRow(u, names) {
    const state = u.disabled ? "disabled" : u.locked ? "locked" : "active";
    const flip = u.disabled || u.locked ? "enable" : "disable";
    return el(
      "tr",
      { testid: "user-row", dataset: { username: u.username, role: u.role } },
      td(u.username),
      td(u.role),
      td(u.customer_id ? names.get(u.customer_id) ?? u.customer_id.slice(0, 8) : "", "muted"),
      td(u.totp_enabled ? "on" : "off"),
      td(state, state === "active" ? "" : "neg"),
      td(stamp(u.created_at), "muted"),
      el("td", {}, el("button", { class: "small", testid: `user-${flip}`, onclick: () => this.setUser(u, flip) }, flip === "enable" ? "Enable" : "Disable")),
    );
  }

  async setUser(user, verb) {
    const message = $("#admin-users-message");
    try {
      const u = await api.post(`/api/users/${user.id}/${verb}`);
      say(message, `${u.username}: ${u.disabled ? "disabled" : "enabled"}`, "ok");
    } catch (exc) {
      say(message, `${user.username}: ${exc.text ?? exc}`, "error");
    }
    await this.loadUsers();
  }

  async createUser(form) {
    const message = $("#admin-users-message");
    const body = {
      username: form.username.value.trim(),
      password: form.password.value,
      role: form.role.value,
    };
    if (form.customer_id.value) body.customer_id = form.customer_id.value;
    if (body.username.length < 3) {
      say(message, "A user name has at least 3 characters.", "error");
      return;
    }
    if (body.password.length < 10) {
      say(message, "A password has at least 10 characters of two or more kinds.", "error");
      return;
    }
    if ((body.role === "trader" || body.role === "investor") && !body.customer_id) {
      say(message, "Traders and investors belong to a customer: choose one.", "error");
      return;
    }
    try {
      const u = await api.post("/api/users", body);
      say(message, `User ${u.username} (${u.role}) created.`, "ok");
      form.reset();
    } catch (exc) {
      say(message, exc.text ?? String(exc), "error");
    }
    await this.loadUsers();
  }
}
