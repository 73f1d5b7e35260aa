// WebSocket client of the exchange's market-data feed (/md/ws/marketdata, docs/marketdata-ws.md).
//
// Keeps the wanted (channel, symbol) subscriptions across reconnects, checks each channel's
// sequence numbers (a snapshot carries the last update it holds; updates follow with seq + 1)
// and asks for a fresh snapshot when a number is missed, dropping that channel's updates until
// it arrives. Listeners get snapshots and updates alike: `on("l2", fn)` -> fn(message);
// `on("status", fn)` gets "connecting" / "open" / "closed", `on("resync", fn)` each gap.
//
// Reconnects back off (0.5 s doubling to 10 s, with jitter so that clients do not come back in
// step after a restart); the delay starts over only after a connection stayed up for a while,
// so a server that accepts and drops at once (a slow-consumer close, a proxy) is not hammered.

const PING_MS = 25_000;
export const MIN_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 10_000;
export const STABLE_MS = 10_000; // a connection up this long resets the reconnect delay

export class MarketData {
  constructor(url = defaultUrl()) {
    this.url = url;
    this.ws = null;
    this.wanted = new Map(); // channel -> Set(symbol)
    this.tracks = new Map(); // "channel|symbol" -> {seq, synced}
    this.listeners = new Map(); // type -> Set(fn)
    this.backoff = MIN_BACKOFF_MS;
    this.gaps = 0;
    this.closed = false;
    this.pinger = null;
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, payload) {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        fn(payload);
      } catch (exc) {
        console.error(`market data listener (${type})`, exc);
      }
    }
  }

  connect() {
    this.closed = false;
    this.emit("status", "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let openedAt = 0;
    let pinger = null; // this socket's own (an old socket closing late must not stop a new one's)
    ws.onopen = () => {
      openedAt = Date.now();
      this.emit("status", "open");
      this.tracks.clear();
      for (const [channel, symbols] of this.wanted) {
        for (const symbol of symbols) this.tracks.set(`${channel}|${symbol}`, { seq: -1, synced: false });
        if (symbols.size) this.send({ op: "subscribe", channels: [channel], symbols: [...symbols] });
      }
      clearInterval(this.pinger);
      pinger = setInterval(() => this.send({ op: "ping" }), PING_MS);
      this.pinger = pinger;
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return; // a replaced socket still draining
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.receive(message);
    };
    ws.onclose = () => {
      clearInterval(pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      this.emit("status", "closed");
      if (this.closed) return;
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this.backoff = MIN_BACKOFF_MS;
      const delay = this.backoff * (0.75 + Math.random() * 0.5);
      setTimeout(() => !this.closed && !this.ws && this.connect(), delay);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }

  close() {
    this.closed = true;
    clearInterval(this.pinger);
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  subscribe(channels, symbols) {
    const fresh = [];
    for (const channel of channels) {
      if (!this.wanted.has(channel)) this.wanted.set(channel, new Set());
      for (const symbol of symbols) {
        this.wanted.get(channel).add(symbol);
        this.tracks.set(`${channel}|${symbol}`, { seq: -1, synced: false });
        fresh.push(symbol);
      }
    }
    if (fresh.length) this.send({ op: "subscribe", channels, symbols });
  }

  unsubscribe(channels, symbols) {
    for (const channel of channels) {
      for (const symbol of symbols) {
        this.wanted.get(channel)?.delete(symbol);
        this.tracks.delete(`${channel}|${symbol}`);
      }
    }
    this.send({ op: "unsubscribe", channels, symbols });
  }

  receive(message) {
    const type = message.type;
    if (type === "error") {
      console.warn("market data error", message.code, message.message);
      this.emit("error", message);
      return;
    }
    if (type === "subscribed" || type === "unsubscribed" || type === "pong") return;
    const key = `${type}|${message.symbol}`;
    const track = this.tracks.get(key);
    if (!track) return; // not (or no longer) wanted
    if (message.snapshot) {
      track.seq = message.seq;
      track.synced = true;
      this.emit(type, message);
      return;
    }
    if (!track.synced || message.seq <= track.seq) return; // awaiting a snapshot, or seen
    if (message.seq !== track.seq + 1) {
      this.gaps += 1;
      track.synced = false;
      this.send({ op: "snapshot", channel: type, symbol: message.symbol });
      this.emit("resync", { channel: type, symbol: message.symbol });
      return;
    }
    track.seq = message.seq;
    this.emit(type, message);
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/md/ws/marketdata`;
}
