// The terminal's entry point: login, then the trader view (watchlist, chart, ladder, tape,
// ticket, orders, positions, account) and, for staff, the admin view. Market data comes over
// the exchange's WebSocket; orders, positions and the account are refreshed when a
// trade_updates event arrives, with a slow poll as the fallback (the API allows 200 requests
// a minute per user).

import * as api from "/web/js/api.js";
import { AdminView } from "/web/js/admin.js";
import { CandleChart, INTERVAL } from "/web/js/chart.js";
import { ApiKeysView } from "/web/js/keys.js";
import { $, $$, el, toast } from "/web/js/dom.js";
import { Ladder } from "/web/js/ladder.js";
import { LoginScreen } from "/web/js/login.js";
import { MarketData } from "/web/js/marketdata.js";
import { OrdersPanel } from "/web/js/orders.js";
import { Portfolio } from "/web/js/portfolio.js";
import { Tape } from "/web/js/tape.js";
import { Ticket } from "/web/js/ticket.js";
import { TradeStream } from "/web/js/tradestream.js";
import { Watchlist } from "/web/js/watchlist.js";

const POLL_PORTFOLIO_MS = 5_000; // positions and account: P&L moves with the market
const POLL_ORDERS_MS = 15_000; // orders when the trade stream is down
const POLL_ORDERS_LIVE_MS = 60_000; // orders as a safety net while the stream is up
const MAX_WATCHED = 200; // l1 subscriptions (the feed allows 1,000 pairs per connection)
const FLASH_KEY = "tradingfloor.flash";
const SYMBOL_KEY = "tradingfloor.symbol";

const state = {
  me: null,
  assets: new Map(),
  symbol: null,
  hasAccount: false,
  timers: [],
  lastOrdersLoad: 0,
};

const md = new MarketData();
let stream = null;
let login;
let watchlist;
let ladder;
let tape;
let chart;
let ticket;
let orders;
let portfolio;
let admin;
let keys;

// --- refreshing orders, positions and the account ------------------------------------------

let refreshing = null;
let refreshAgain = false;

/** Reload orders, positions and the account; calls made while one runs are merged into one. */
function refreshTrading() {
  if (!state.hasAccount) return Promise.resolve();
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      state.lastOrdersLoad = Date.now();
      const results = await Promise.allSettled([
        orders.load().then((open) => ladder.setOwnOrders(open)),
        portfolio.loadPositions(),
        portfolio.loadAccount().then((a) => ticket.setAccount(a)),
      ]);
      reportFailure(results);
    } while (refreshAgain);
  })().finally(() => (refreshing = null));
  return refreshing;
}

let refreshTimer = null;
function refreshSoon(ms = 120) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshTrading, ms);
}

function reportFailure(results) {
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return;
  const exc = failed.reason;
  if (exc instanceof api.ApiError && exc.status === 401) return; // the session-end path handles it
  toast(exc?.text ?? String(exc), { error: true });
}

function onTradeUpdate(update) {
  const o = update.order;
  const price = update.price ? ` @ ${update.price}` : "";
  const words = {
    fill: `Filled: ${o.side} ${update.qty ?? o.filled_qty} ${o.symbol}${price}`,
    partial_fill: `Partial fill: ${o.side} ${update.qty ?? ""} ${o.symbol}${price} (${o.filled_qty}/${o.qty})`,
    rejected: `Rejected: ${o.side} ${o.qty} ${o.symbol}: ${o.reject_reason ?? ""}`,
    canceled: `Cancelled: ${o.side} ${o.qty} ${o.symbol}`,
    expired: `Expired: ${o.side} ${o.qty} ${o.symbol}`,
    order_cancel_rejected: `Cancel refused: ${o.symbol}`,
    order_replace_rejected: `Replace refused: ${o.symbol}`,
  };
  if (words[update.event]) toast(words[update.event], { error: update.event.endsWith("rejected") });
  refreshSoon();
  if ((update.event === "fill" || update.event === "partial_fill") && !$('[data-pane="activities"]').hidden) {
    portfolio.loadActivities().catch(() => {});
  }
}

function startPolling() {
  stopPolling();
  const every = (ms, fn) => state.timers.push(setInterval(() => {
    if (!document.hidden && api.rateLimitWait() === 0 && state.hasAccount) fn();
  }, ms));
  every(POLL_PORTFOLIO_MS, () => {
    Promise.allSettled([
      portfolio.loadPositions(),
      portfolio.loadAccount().then((a) => ticket.setAccount(a)),
    ]).then(reportFailure);
  });
  every(5_000, () => {
    const wait = stream?.live ? POLL_ORDERS_LIVE_MS : POLL_ORDERS_MS;
    if (Date.now() - state.lastOrdersLoad >= wait) refreshTrading();
  });
}

function stopPolling() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
}

// --- symbol selection ------------------------------------------------------------------------

function select(symbol) {
  if (!state.assets.has(symbol) || symbol === state.symbol) return;
  const old = state.symbol;
  if (old) md.unsubscribe(["l2", "trade", "bar"], [old]);
  state.symbol = symbol;
  localStorage.setItem(SYMBOL_KEY, symbol);
  watchlist.select(symbol);
  ladder.setSymbol(symbol);
  ladder.setOwnOrders(orders.open);
  tape.setSymbol(symbol);
  chart.setSymbol(symbol, state.assets.get(symbol).price_increment);
  ticket.setSymbol(symbol);
  $("#chart-title").textContent = symbol;
  $("#ladder-symbol").textContent = symbol;
  $("#tape-symbol").textContent = symbol;
  md.subscribe(["l2", "trade", "bar"], [symbol]);
  loadHistory(symbol);
}

/** The chart's closed bars from REST (the bar channel's snapshot holds only the open ones). */
function loadHistory(symbol) {
  api
    .md(`/api/v1/marketdata/${encodeURIComponent(symbol)}/bars`, { interval: INTERVAL, limit: "600" })
    .then((history) => chart.setHistory(symbol, history.bars ?? []))
    .catch((exc) => toast(`Chart history: ${exc.text ?? exc}`, { error: true }));
}

// --- views -------------------------------------------------------------------------------------

function showView(name) {
  for (const b of $$("#view-tabs button")) b.classList.toggle("active", b.dataset.view === name);
  $("#trade-view").hidden = name !== "trade";
  $("#admin-view").hidden = name !== "admin";
  $("#keys-view").hidden = name !== "keys";
  if (name === "admin") admin.show();
  else admin.hide();
  if (name === "keys") keys.show();
  else keys.hide();
}

function setConn(id, status) {
  const dot = $(id);
  dot.classList.toggle("on", status === "open");
  dot.classList.toggle("wait", status === "connecting");
  dot.title = status;
}

async function chooseAccount(id) {
  api.setAccountId(id);
  state.hasAccount = Boolean(id);
  if (id) await refreshTrading();
}

async function setUpAccounts(me) {
  const staff = me.permissions.includes("view_all_accounts");
  if (me.account_id) {
    state.hasAccount = true;
    return;
  }
  if (!staff) {
    toast("This user has no account yet.", { error: true });
    return;
  }
  const accounts = await api.get("/api/accounts", { limit: 1000 }).catch(() => []);
  const select = $("#acct-select");
  select.replaceChildren(
    el("option", { value: "" }, "(none)"),
    ...accounts.map((a) => el("option", { value: a.id }, `${a.account_number} · ${a.cash}`)),
  );
  select.addEventListener("change", () => chooseAccount(select.value));
  $("#acct-pick").hidden = false;
}

// --- keyboard --------------------------------------------------------------------------------

function onKey(e) {
  const typing = e.target.closest?.("input, select, textarea") !== null;
  if (e.key === "Escape" && typing) {
    e.target.blur();
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey || $("#trade-view").hidden) return;
  const form = $("#ticket");
  if (e.key === "/") {
    e.preventDefault();
    form.symbol.focus();
    form.symbol.select();
  } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    watchlist.step(e.key === "ArrowDown" ? 1 : -1);
  } else if (e.key === "b" || e.key === "s") {
    e.preventDefault();
    ticket.setSide(e.key === "b" ? "buy" : "sell");
    form.qty.focus();
    form.qty.select();
  }
}

// --- start and stop ----------------------------------------------------------------------------

async function start() {
  let me;
  try {
    me = await api.get("/api/me");
  } catch (exc) {
    login.show(exc.text ?? String(exc));
    return;
  }
  state.me = me;
  login.hide();
  $("#app-view").hidden = false;
  $("#who").textContent = `${me.username} · ${me.role}`;
  const can = (p) => me.permissions.includes(p);
  const canTrade = can("trade");
  ticket.setEnabled(canTrade);
  orders.canTrade = canTrade;
  portfolio.canTrade = canTrade;
  admin.setPermissions(me.permissions);
  $('[data-view="admin"]').hidden = !(can("admin_venue") || can("manage_customers") || can("manage_users"));
  $('[data-view="keys"]').hidden = !can("manage_api_keys");

  try {
    const assets = await api.get("/v2/assets", { status: "active" });
    state.assets = new Map(assets.map((a) => [a.symbol, a]));
    watchlist.setAssets(assets);
    $("#symbol-list").replaceChildren(...assets.map((a) => el("option", { value: a.symbol })));
    md.connect();
    md.subscribe(["l1"], assets.slice(0, MAX_WATCHED).map((a) => a.symbol));
    const saved = localStorage.getItem(SYMBOL_KEY);
    select(state.assets.has(saved) ? saved : assets[0]?.symbol);
  } catch (exc) {
    toast(`Assets: ${exc.text ?? exc}`, { error: true });
  }

  await setUpAccounts(me);
  $("#conn-orders").hidden = !me.account_id; // staff without an account poll instead
  if (me.account_id) {
    stream = new TradeStream({
      onUpdate: onTradeUpdate,
      onStatus: (s) => {
        setConn("#conn-orders", s);
        if (s === "open") refreshSoon(); // catch up on events missed while disconnected
      },
    });
    stream.start();
  }
  await refreshTrading();
  startPolling();
}

function leave(message, kind = "error") {
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, kind }));
  location.reload();
}

function boot() {
  watchlist = new Watchlist($("#watch-body"), { onSelect: select });
  ladder = new Ladder($("#ladder-body"), { onPick: (price) => ticket.pickPrice(price) });
  tape = new Tape($("#tape-body"));
  chart = new CandleChart($("#chart-canvas"), $("#chart-legend"));
  ticket = new Ticket($("#ticket"), {
    assets: () => state.assets,
    position: (symbol) => portfolio?.positions.find((p) => p.symbol === symbol)?.qty ?? "0",
    onPlaced: () => refreshSoon(50),
  });
  orders = new OrdersPanel({ tbody: $("#orders-body"), assets: () => state.assets, onChanged: () => refreshSoon(50) });
  portfolio = new Portfolio({ onSelect: select, onChanged: () => refreshSoon(50) });
  admin = new AdminView();
  keys = new ApiKeysView();
  login = new LoginScreen({ onLoggedIn: start });

  md.on("l1", (m) => {
    watchlist.onL1(m);
    ticket.onQuote(m);
  });
  md.on("l2", (m) => ladder.onL2(m));
  md.on("trade", (m) => tape.onTrade(m));
  md.on("bar", (m) => chart.onBar(m));
  let mdOpened = 0;
  md.on("status", (s) => {
    setConn("#conn-md", s);
    // bars closed while the feed was away are only in the REST history
    if (s === "open" && (mdOpened += 1) > 1 && state.symbol) loadHistory(state.symbol);
  });
  md.on("resync", ({ channel, symbol }) => channel === "bar" && symbol === state.symbol && loadHistory(symbol));

  $("#ticket").symbol.addEventListener("change", (e) => select(e.target.value.trim().toUpperCase()));
  for (const b of $$("#view-tabs button")) b.addEventListener("click", () => showView(b.dataset.view));
  $("#logout").addEventListener("click", async () => {
    await api.logout();
    leave("You have logged out.", "ok");
  });
  document.addEventListener("keydown", onKey);
  api.onSessionEnd((reason) => leave(reason));

  const flash = JSON.parse(sessionStorage.getItem(FLASH_KEY) || "null");
  sessionStorage.removeItem(FLASH_KEY);
  if (api.restore()) start();
  else login.show(flash?.message ?? "", flash?.kind);
}

boot();
