// A candlestick chart with volume, drawn on a <canvas>: 1-minute bars from the REST history
// plus live bar updates (keyed by start; a later message for the same bar replaces it).
// Mouse: hover shows a crosshair and the bar's OHLCV, the wheel zooms, dragging pans,
// double-click goes back to the latest bars. Prices become numbers here for drawing only.

import { count } from "/web/js/dom.js";

const COLORS = {
  bg: "#11161e",
  grid: "#1c2330",
  text: "#7b8699",
  up: "#1fb978",
  down: "#f0506e",
  upVol: "rgba(31,185,120,0.35)",
  downVol: "rgba(240,80,110,0.35)",
  cross: "#55627a",
  last: "#3d8bfd",
};
const AXIS_W = 66;
const TIME_H = 18;
const MIN_BAR_W = 3;
const MAX_BAR_W = 40;
const LABEL_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 240];
export const INTERVAL = "1m";
export const MAX_BARS = 2_000; // kept per symbol (a day and more of 1-minute bars); oldest go first

export class CandleChart {
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    this.symbol = null;
    this.bars = new Map(); // start -> bar
    this.list = [];
    this.barWidth = 9;
    this.offset = 0; // bars hidden to the right (panning)
    this.hover = null; // {x, y}
    this.drag = null;
    this.decimals = 2;
    this.pending = false;
    new ResizeObserver(() => this.schedule()).observe(canvas);
    canvas.addEventListener("mousemove", (e) => this.onMove(e));
    canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.drag = null;
      this.schedule();
    });
    canvas.addEventListener("mousedown", (e) => (this.drag = { x: e.offsetX, offset: this.offset }));
    window.addEventListener("mouseup", () => (this.drag = null));
    canvas.addEventListener("dblclick", () => {
      this.offset = 0;
      this.barWidth = 9;
      this.schedule();
    });
    canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const factor = e.deltaY > 0 ? 0.85 : 1.18;
        this.barWidth = Math.min(MAX_BAR_W, Math.max(MIN_BAR_W, this.barWidth * factor));
        this.schedule();
      },
      { passive: false },
    );
  }

  setSymbol(symbol, tickSize) {
    this.symbol = symbol;
    this.bars.clear();
    this.list = [];
    this.offset = 0;
    this.decimals = tickSize?.includes(".") ? tickSize.split(".")[1].length : 2;
    this.schedule();
  }

  /** Bars from the REST history: kept unless a live message already gave that bar. */
  setHistory(symbol, bars) {
    if (symbol !== this.symbol) return;
    for (const bar of bars) if (!this.bars.has(bar.start)) this.bars.set(bar.start, bar);
    this.changed();
  }

  /** A bar-channel message (snapshot of open bars, or one bar). */
  onBar(message) {
    if (message.symbol !== this.symbol) return;
    const bars = message.snapshot ? message.bars ?? [] : [message];
    for (const bar of bars) if (bar.interval === INTERVAL) this.bars.set(bar.start, bar);
    this.changed();
  }

  changed() {
    this.list = [...this.bars.values()].sort((a, b) => a.start - b.start);
    if (this.list.length > MAX_BARS) {
      // A terminal left open for days: drop the oldest bars instead of growing without end.
      for (const bar of this.list.splice(0, this.list.length - MAX_BARS)) this.bars.delete(bar.start);
      this.offset = Math.min(this.offset, this.list.length - 1);
    }
    this.schedule();
  }

  get last() {
    return this.list[this.list.length - 1] ?? null;
  }

  onMove(e) {
    this.hover = { x: e.offsetX, y: e.offsetY };
    if (this.drag) {
      const moved = Math.round((e.offsetX - this.drag.x) / this.barWidth);
      this.offset = Math.max(0, Math.min(this.list.length - 1, this.drag.offset + moved));
    }
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const { canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = COLORS.bg;
    ctx.fillRect(0, 0, w, h);
    ctx.font = "10.5px ui-monospace, DejaVu Sans Mono, monospace";
    ctx.textBaseline = "middle";

    const plotW = w - AXIS_W;
    const priceH = Math.max(40, (h - TIME_H) * 0.76);
    const volTop = priceH + 6;
    const volH = Math.max(10, h - TIME_H - volTop);
    const fits = Math.max(1, Math.floor(plotW / this.barWidth));
    const end = Math.max(0, this.list.length - this.offset);
    const visible = this.list.slice(Math.max(0, end - fits), end);
    this.canvas.dataset.bars = String(this.list.length);

    if (!visible.length) {
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = "center";
      const text = this.symbol ? `No trades in ${this.symbol} yet` : "Select a symbol";
      ctx.fillText(text, plotW / 2, priceH / 2);
      this.showLegend(null);
      return;
    }

    let lo = Infinity;
    let hi = -Infinity;
    let maxVol = 1;
    for (const b of visible) {
      lo = Math.min(lo, Number(b.low));
      hi = Math.max(hi, Number(b.high));
      maxVol = Math.max(maxVol, b.volume);
    }
    if (hi - lo < 1e-9) {
      const pad = Math.max(Math.abs(hi) * 0.002, 10 ** -this.decimals);
      hi += pad;
      lo -= pad;
    }
    const padY = (hi - lo) * 0.08;
    hi += padY;
    lo -= padY;
    const y = (p) => ((hi - p) / (hi - lo)) * priceH;
    const xOf = (i) => plotW - (visible.length - i - 0.5) * this.barWidth;

    // grid and price axis
    const step = niceStep((hi - lo) / Math.max(2, Math.floor(priceH / 45)));
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = "left";
    for (let p = Math.ceil(lo / step) * step; p <= hi; p += step) {
      const py = Math.round(y(p)) + 0.5;
      line(ctx, 0, py, plotW, py);
      ctx.fillText(p.toFixed(this.decimals), plotW + 6, py);
    }
    line(ctx, plotW + 0.5, 0, plotW + 0.5, h - TIME_H);
    line(ctx, 0, volTop - 3.5, plotW, volTop - 3.5);

    // time axis: labels on round minutes, at least ~70 px apart
    const every = LABEL_MINUTES.find((m) => m * this.barWidth >= 70) ?? LABEL_MINUTES.at(-1);
    ctx.textAlign = "center";
    visible.forEach((b, i) => {
      if (Math.round(b.start / 6e10) % every !== 0) return;
      const x = Math.round(xOf(i)) + 0.5;
      line(ctx, x, 0, x, h - TIME_H);
      ctx.fillText(hhmm(b.start), x, h - TIME_H / 2);
    });

    // candles and volume
    const body = Math.max(1, Math.floor(this.barWidth * 0.7));
    visible.forEach((b, i) => {
      const o = Number(b.open);
      const c = Number(b.close);
      const up = c >= o;
      const x = Math.round(xOf(i));
      ctx.strokeStyle = ctx.fillStyle = up ? COLORS.up : COLORS.down;
      line(ctx, x + 0.5, Math.round(y(Number(b.high))), x + 0.5, Math.round(y(Number(b.low))));
      const top = Math.round(y(Math.max(o, c)));
      const height = Math.max(1, Math.round(y(Math.min(o, c))) - top);
      ctx.fillRect(x - Math.floor(body / 2), top, body, height);
      const vh = Math.max(b.volume ? 1 : 0, (b.volume / maxVol) * (volH - 2));
      ctx.fillStyle = up ? COLORS.upVol : COLORS.downVol;
      ctx.fillRect(x - Math.floor(body / 2), volTop + volH - vh, body, vh);
    });

    // last price
    const last = this.last;
    if (last && this.offset === 0) {
      const py = Math.round(y(Number(last.close))) + 0.5;
      ctx.strokeStyle = COLORS.last;
      ctx.setLineDash([3, 3]);
      line(ctx, 0, py, plotW, py);
      ctx.setLineDash([]);
      label(ctx, last.close, plotW, py, COLORS.last);
    }

    // crosshair
    let shown = visible[visible.length - 1];
    if (this.hover && this.hover.x < plotW) {
      const i = Math.floor(visible.length - (plotW - this.hover.x) / this.barWidth);
      if (i >= 0 && i < visible.length) shown = visible[i];
      ctx.strokeStyle = COLORS.cross;
      ctx.setLineDash([2, 3]);
      const cx = Math.round(xOf(Math.max(0, Math.min(visible.length - 1, i)))) + 0.5;
      line(ctx, cx, 0, cx, h - TIME_H);
      if (this.hover.y < priceH) {
        const cy = Math.round(this.hover.y) + 0.5;
        line(ctx, 0, cy, plotW, cy);
        ctx.setLineDash([]);
        const price = hi - (this.hover.y / priceH) * (hi - lo);
        label(ctx, price.toFixed(this.decimals), plotW, cy, COLORS.cross);
      }
      ctx.setLineDash([]);
    }
    this.showLegend(shown);
  }

  showLegend(bar) {
    if (!this.legend) return;
    this.legend.textContent = bar
      ? `${hhmm(bar.start)}  O ${bar.open}  H ${bar.high}  L ${bar.low}  C ${bar.close}  V ${count(bar.volume)}`
      : "";
  }
}

function line(ctx, x1, y1, x2, y2) {
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}

function label(ctx, text, x, y, color) {
  ctx.fillStyle = color;
  ctx.fillRect(x + 1, y - 8, AXIS_W - 2, 16);
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.fillText(text, x + 6, y);
}

/** 1, 2 or 5 times a power of ten, near `raw`. */
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

function hhmm(ns) {
  const d = new Date(ns / 1e6);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}
