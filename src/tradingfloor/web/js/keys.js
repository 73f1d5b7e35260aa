// The API keys page: the user's active keys (GET /api/me/api-keys), creating one (POST; the
// secret is shown once, with the lines that connect alpaca-py to this broker) and revoking one
// (DELETE /api/me/api-keys/{key_id}, effective at once). A password login is needed: an API key
// cannot manage keys, which is why the page exists (no curl needed before alpaca-py can connect).

import * as api from "/web/js/api.js";
import { $, confirmDialog, el, emptyRow, say, stamp, td } from "/web/js/dom.js";

const COLUMNS = 5;

/** Python that connects alpaca-py to this broker with a key pair. */
export function alpacaSnippet(origin, keyId, secret) {
  return [
    "from alpaca.trading.client import TradingClient",
    "",
    `client = TradingClient("${keyId}", "${secret}", paper=True,`,
    `                       url_override="${origin}")`,
    "print(client.get_account().buying_power)",
  ].join("\n");
}

export class ApiKeysView {
  constructor() {
    this.body = $("#keys-body");
    this.message = $("#keys-message");
    $("#key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.create(e.target);
    });
    $("#keys-reload").addEventListener("click", () => this.load());
    $("#new-key-done").addEventListener("click", () => this.hideSecret());
  }

  show() {
    this.load();
  }

  hide() {
    this.hideSecret(); // the secret is not left on screen
  }

  hideSecret() {
    $("#new-key").hidden = true;
    $("#new-key-secret").textContent = "";
    $("#new-key-snippet").textContent = "";
  }

  async load() {
    try {
      const keys = await api.get("/api/me/api-keys");
      if (!keys.length) this.body.replaceChildren(emptyRow(COLUMNS, "No API keys yet"));
      else this.body.replaceChildren(...keys.map((k) => this.row(k)));
    } catch (exc) {
      this.body.replaceChildren(emptyRow(COLUMNS, exc.text ?? String(exc)));
    }
  }

  row(k) {
    const revoke = el("button", { class: "small danger", testid: "key-revoke", onclick: () => this.revoke(k) }, "Revoke");
    return el(
      "tr",
      { testid: "key-row", dataset: { keyId: k.key_id } },
      el("td", {}, el("code", {}, k.key_id)),
      td(k.label),
      td(String(k.rate_limit_per_minute), "num"),
      td(stamp(k.created_at), "muted"),
      el("td", {}, revoke),
    );
  }

  async create(form) {
    say(this.message, "");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const key = await api.post("/api/me/api-keys", { label: form.label.value.trim() });
      form.label.value = "";
      $("#new-key-id").textContent = key.key_id;
      $("#new-key-secret").textContent = key.secret;
      $("#new-key-snippet").textContent = alpacaSnippet(location.origin, key.key_id, key.secret);
      $("#new-key").hidden = false;
      say(this.message, `Created ${key.key_id}${key.label ? ` (${key.label})` : ""}.`, "ok");
      await this.load();
    } catch (exc) {
      say(this.message, exc.text ?? String(exc), "error");
    } finally {
      button.disabled = false;
    }
  }

  async revoke(k) {
    if (!(await confirmDialog(`Revoke ${k.key_id}${k.label ? ` (${k.label})` : ""}? Programs using it stop at once.`))) return;
    try {
      await api.del(`/api/me/api-keys/${encodeURIComponent(k.key_id)}`);
      if ($("#new-key-id").textContent === k.key_id) this.hideSecret();
      say(this.message, `Revoked ${k.key_id}.`, "ok");
    } catch (exc) {
      say(this.message, exc.text ?? String(exc), "error");
    }
    await this.load();
  }
}
