// Client-side checks of an order ticket, mirroring the broker's rules (oms/requests.py and the
// API's unit checks), and the JSON body built from the user's own typed strings.
// The server stays the judge: whatever it answers is shown verbatim as well.

import { cmp, isMultiple, parse } from "/web/js/decimal.js";

export const TYPES = ["market", "limit", "stop", "stop_limit", "trailing_stop"];
export const TIFS = ["day", "gtc", "opg", "cls", "ioc", "fok"];
export const CLASSES = ["simple", "bracket", "oco", "oto"];
const CLASS_NAME = { bracket: "Bracket", oco: "OCO", oto: "OTO" };

/**
 * The order types a class allows (the broker's oms/requests.py): a bracket's or OTO's entry is
 * a market or limit order, an OCO exit pair has type limit, a simple order may be any type.
 */
export function typesFor(orderClass) {
  if (orderClass === "bracket" || orderClass === "oto") return ["market", "limit"];
  if (orderClass === "oco") return ["limit"];
  return [...TYPES];
}

/**
 * The times in force a type and class allow: contingent classes are DAY or GTC (the broker's
 * oms/requests.py); the opening and closing auctions (OPG, CLS) take only market and limit
 * orders (the engine's INVALID_TIF, 3006). Anything else is always rejected, so the ticket
 * does not offer it.
 */
export function tifsFor(type, orderClass) {
  if (orderClass && orderClass !== "simple") return ["day", "gtc"];
  if (type !== "market" && type !== "limit") return TIFS.filter((t) => t !== "opg" && t !== "cls");
  return [...TIFS];
}

/** Extended hours are for simple DAY limit orders only (oms/requests.py). */
export function extendedHoursAllowed(type, tif, orderClass) {
  return (orderClass || "simple") === "simple" && type === "limit" && tif === "day";
}

/** Which ticket fields apply to a type and class (the rest are hidden and never sent). */
export function fieldsFor(type, orderClass) {
  const oco = orderClass === "oco";
  return {
    limit_price: !oco && (type === "limit" || type === "stop_limit"),
    stop_price: type === "stop" || type === "stop_limit",
    trail: type === "trailing_stop",
    take_profit: orderClass !== "simple",
    stop_loss: orderClass !== "simple",
    stop_loss_limit: orderClass !== "simple",
    extended_hours: orderClass === "simple" && type === "limit",
  };
}

const LABEL = {
  limit_price: "Limit price",
  stop_price: "Stop price",
  trail: "Trail",
  take_profit: "Take profit limit",
  stop_loss: "Stop loss stop",
  stop_loss_limit: "Stop loss limit",
};

function positivePrice(errors, field, value, tick) {
  const p = parse(value);
  if (p === null) {
    errors.push({ field, message: `${LABEL[field]} must be a number like 190.25.` });
    return false;
  }
  if (p.n <= 0n) {
    errors.push({ field, message: `${LABEL[field]} must be above zero.` });
    return false;
  }
  if (tick && !isMultiple(value, tick)) {
    errors.push({ field, message: `${LABEL[field]} must be a multiple of the tick size ${tick}.` });
    return false;
  }
  return true;
}

/**
 * Check a ticket. `form` holds the raw strings: symbol, side, qty, type, time_in_force,
 * limit_price, stop_price, trail_kind ("trail_price" | "trail_percent"), trail, order_class,
 * take_profit, stop_loss, stop_loss_limit, client_order_id, and extended_hours (boolean).
 * `asset` is the /v2/assets entry of the symbol (or undefined when unknown).
 * Returns {errors: [{field, message}], body} where body is what POST /v2/orders gets.
 */
export function checkOrder(form, asset) {
  const errors = [];
  const f = Object.fromEntries(
    Object.entries(form).map(([k, v]) => [k, typeof v === "string" ? v.trim() : v]),
  );
  const symbol = (f.symbol || "").toUpperCase();
  const type = f.type;
  const cls = f.order_class || "simple";
  const tick = asset?.price_increment;
  const lot = asset?.min_trade_increment;
  const shown = fieldsFor(type, cls);

  if (!symbol) errors.push({ field: "symbol", message: "Choose a symbol." });
  else if (!asset) errors.push({ field: "symbol", message: `${symbol} is not a listed symbol.` });
  else if (asset.tradable === false) errors.push({ field: "symbol", message: `${symbol} is not tradable (restricted).` });
  if (f.side !== "buy" && f.side !== "sell") errors.push({ field: "side", message: "Choose buy or sell." });

  if (!f.qty) errors.push({ field: "qty", message: "Quantity is required." });
  else if (!/^\d+$/.test(f.qty) || /^0+$/.test(f.qty)) {
    errors.push({ field: "qty", message: "Quantity must be a whole number of shares above zero." });
  } else if (lot && lot !== "1" && !isMultiple(f.qty, lot)) {
    errors.push({ field: "qty", message: `Quantity must be a multiple of the lot size ${lot}.` });
  }
  if (!TYPES.includes(type)) errors.push({ field: "type", message: "Choose an order type." });
  if (!TIFS.includes(f.time_in_force)) errors.push({ field: "time_in_force", message: "Choose a time in force." });
  if (!CLASSES.includes(cls)) errors.push({ field: "order_class", message: "Choose an order class." });

  const ok = {};
  for (const field of ["limit_price", "stop_price"]) {
    if (!shown[field]) continue;
    if (!f[field]) errors.push({ field, message: `${LABEL[field]} is required for a ${type.replace("_", " ")} order.` });
    else ok[field] = positivePrice(errors, field, f[field], tick);
  }
  if (shown.trail) {
    if (!f.trail) {
      errors.push({ field: "trail", message: "Trail is required for a trailing stop (a price or a percent)." });
    } else if (f.trail_kind === "trail_percent") {
      const p = parse(f.trail);
      if (p === null || p.n <= 0n || cmp(f.trail, "100") >= 0) {
        errors.push({ field: "trail", message: "Trail percent must be above 0 and below 100." });
      } else if (p.scale > 2) {
        errors.push({ field: "trail", message: "Trail percent has at most two decimals." });
      }
    } else {
      positivePrice(errors, "trail", f.trail, tick);
    }
  }

  if (cls !== "simple") {
    const name = CLASS_NAME[cls] ?? cls;
    if (f.time_in_force !== "day" && f.time_in_force !== "gtc") {
      errors.push({ field: "time_in_force", message: `${name} orders must be DAY or GTC.` });
    }
    if ((cls === "bracket" || cls === "oto") && type !== "market" && type !== "limit") {
      errors.push({ field: "type", message: `${cls === "oto" ? "An OTO" : "A bracket"} order's entry must be a market or limit order.` });
    }
    if (cls === "oco" && type !== "limit") {
      errors.push({ field: "type", message: "OCO orders must have type limit." });
    }
    const hasTp = Boolean(f.take_profit);
    const hasSl = Boolean(f.stop_loss);
    if ((cls === "bracket" || cls === "oco") && !(hasTp && hasSl)) {
      errors.push({
        field: hasTp ? "stop_loss" : "take_profit",
        message: `${name} orders need both a take-profit limit and a stop-loss stop.`,
      });
    }
    if (cls === "oto" && hasTp === hasSl) {
      errors.push({ field: "take_profit", message: "OTO orders need exactly one of take profit and stop loss." });
    }
    if (f.stop_loss_limit && !hasSl) {
      errors.push({ field: "stop_loss_limit", message: "A stop-loss limit needs a stop-loss stop price." });
    }
    if (hasTp) ok.take_profit = positivePrice(errors, "take_profit", f.take_profit, tick);
    if (hasSl) ok.stop_loss = positivePrice(errors, "stop_loss", f.stop_loss, tick);
    if (f.stop_loss_limit) positivePrice(errors, "stop_loss_limit", f.stop_loss_limit, tick);
    const exitSells = (f.side === "buy") !== (cls === "oco");
    if (ok.take_profit && ok.stop_loss) {
      const order = cmp(f.take_profit, f.stop_loss);
      if (exitSells && order <= 0) {
        errors.push({ field: "take_profit", message: "Take profit must be above the stop loss (the exits sell)." });
      } else if (!exitSells && order >= 0) {
        errors.push({ field: "take_profit", message: "Take profit must be below the stop loss (the exits buy)." });
      }
    }
    if ((cls === "bracket" || cls === "oto") && type === "limit" && ok.limit_price) {
      const buy = f.side === "buy";
      // strictly beyond the entry on the exit's side, for buys and sells alike
      const beyond = (price, above) => cmp(price, f.limit_price) * (above ? 1 : -1) > 0;
      if (ok.take_profit && !beyond(f.take_profit, buy)) {
        errors.push({
          field: "take_profit",
          message: `Take profit must be ${buy ? "above" : "below"} the entry limit price.`,
        });
      }
      if (ok.stop_loss && !beyond(f.stop_loss, !buy)) {
        errors.push({
          field: "stop_loss",
          message: `Stop loss must be ${buy ? "below" : "above"} the entry limit price.`,
        });
      }
    }
  }

  const extended = Boolean(f.extended_hours) && shown.extended_hours;
  if (extended && f.time_in_force !== "day") {
    errors.push({ field: "extended_hours", message: "Extended-hours orders must be DAY limit orders." });
  }
  if (f.client_order_id && f.client_order_id.length > 128) {
    errors.push({ field: "client_order_id", message: "Client order id has at most 128 characters." });
  }

  const body = { symbol, side: f.side, qty: f.qty, type, time_in_force: f.time_in_force };
  if (shown.limit_price) body.limit_price = f.limit_price;
  if (shown.stop_price) body.stop_price = f.stop_price;
  if (shown.trail) body[f.trail_kind === "trail_percent" ? "trail_percent" : "trail_price"] = f.trail;
  if (cls !== "simple") {
    body.order_class = cls;
    if (f.take_profit) body.take_profit = { limit_price: f.take_profit };
    if (f.stop_loss) {
      body.stop_loss = { stop_price: f.stop_loss };
      if (f.stop_loss_limit) body.stop_loss.limit_price = f.stop_loss_limit;
    }
  }
  if (extended) body.extended_hours = true;
  if (f.client_order_id) body.client_order_id = f.client_order_id;
  return { errors, body };
}

/**
 * The times in force a working order may be given by a replace (the broker's rebooking rules:
 * those of a new order of its type and class; an extended-hours order stays DAY).
 */
export function replaceTifs(order) {
  if (order.extended_hours) return ["day"];
  return tifsFor(order.type, order.order_class || "simple");
}

/**
 * Check a replace: only the changed fields go out; at least one must change. A new time in
 * force or trail makes the broker cancel the order and place the replacement; the venue cannot
 * change a trailing stop in place, so a trailing stop's quantity changes only together with
 * its trail or time in force.
 */
export function checkReplace(order, form, asset) {
  const errors = [];
  const body = {};
  const tick = asset?.price_increment;
  const changed = (field, current) => form[field] !== undefined && form[field].trim() !== "" && form[field].trim() !== (current ?? "");
  if (changed("qty", order.qty)) {
    const qty = form.qty.trim();
    if (!/^\d+$/.test(qty) || /^0+$/.test(qty)) errors.push({ field: "qty", message: "Quantity must be a whole number of shares above zero." });
    else body.qty = qty;
  }
  const trailing = order.type === "trailing_stop";
  for (const field of ["limit_price", "stop_price"]) {
    if (trailing || !order[field] || !changed(field, order[field])) continue;
    const value = form[field].trim();
    if (positivePrice(errors, field, value, tick) && cmp(value, order[field]) !== 0) body[field] = value;
  }
  if (trailing && changed("trail", order.trail_price ?? order.trail_percent)) {
    const value = form.trail.trim();
    const p = parse(value);
    if (p === null || p.n <= 0n) errors.push({ field: "trail", message: "Trail must be a number above zero." });
    else if (cmp(value, order.trail_price ?? order.trail_percent) !== 0) body.trail = value;
  }
  if (form.time_in_force && form.time_in_force !== order.time_in_force) {
    if (replaceTifs(order).includes(form.time_in_force)) body.time_in_force = form.time_in_force;
    else errors.push({ field: "time_in_force", message: `This order cannot be ${form.time_in_force.toUpperCase()}.` });
  }
  if (trailing && body.qty && !body.trail && !body.time_in_force) {
    errors.push({
      field: "qty",
      message: "The venue cannot change a trailing stop in place: change its trail or time in force as well.",
    });
  }
  if (!errors.length && !Object.keys(body).length) errors.push({ field: "qty", message: "Nothing to change." });
  return { errors, body };
}
