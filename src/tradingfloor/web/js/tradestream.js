// The broker's trade_updates stream (/stream): authenticate with the access token, listen, and
// hand every order event ({event, order, price, qty, ...}) to `onUpdate`. Reconnects with
// backoff (refreshing the token first when the stream refuses it).

import { accessToken, refresh } from "/web/js/api.js";

const MAX_BACKOFF_MS = 15_000;

export class TradeStream {
  constructor({ onUpdate, onStatus }) {
    this.onUpdate = onUpdate;
    this.onStatus = onStatus;
    this.ws = null;
    this.stopped = true;
    this.backoff = 1_000;
    this.refused = false;
  }

  get live() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.listening;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  async open() {
    if (this.refused) await refresh().catch(() => {});
    const token = accessToken();
    if (this.stopped || !token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/stream`);
    this.ws = ws;
    this.listening = false;
    this.onStatus("connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({ action: "authenticate", data: { oauth_token: token } }));
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.stream === "authorization") {
        if (message.data?.status === "authorized") {
          this.refused = false;
          ws.send(JSON.stringify({ action: "listen", data: { streams: ["trade_updates"] } }));
        } else {
          this.refused = true;
        }
      } else if (message.stream === "listening") {
        this.listening = true;
        this.backoff = 1_000;
        this.onStatus("open");
      } else if (message.stream === "trade_updates") {
        this.onUpdate(message.data);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.listening = false;
      this.onStatus("closed");
      if (this.stopped) return;
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }
}
