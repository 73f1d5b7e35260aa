// Exact arithmetic on decimal strings ("189.50", "-12.3") with BigInt: compare, add, subtract,
// test multiples of a tick. Prices and money are never turned into floats for anything that
// is sent to the server (only the chart and the depth bars use numbers, for drawing).

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** The parts of a decimal string, or null when it is not one ("", ".", "1e5", "abc"). */
export function parse(text) {
  const s = String(text ?? "").trim();
  const m = DECIMAL.exec(s);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
  const frac = m[3] ?? "";
  const digits = BigInt((m[2] || "0") + frac);
  return { n: m[1] === "-" ? -digits : digits, scale: frac.length };
}

export function isDecimal(text) {
  return parse(text) !== null;
}

function align(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [a.n * 10n ** BigInt(scale - a.scale), b.n * 10n ** BigInt(scale - b.scale), scale];
}

function format(n, scale) {
  const neg = n < 0n;
  let digits = (neg ? -n : n).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? "-" : "") + digits;
}

function must(text) {
  const p = parse(text);
  if (p === null) throw new Error(`not a decimal: ${text}`);
  return p;
}

/** -1, 0 or 1 as a < b, a == b, a > b. */
export function cmp(a, b) {
  const [x, y] = align(must(a), must(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

export function add(a, b) {
  const [x, y, scale] = align(must(a), must(b));
  return format(x + y, scale);
}

export function sub(a, b) {
  const [x, y, scale] = align(must(a), must(b));
  return format(x - y, scale);
}

/** -1, 0 or 1; 0 for text that is not a decimal. */
export function sign(text) {
  const p = parse(text);
  if (p === null || p.n === 0n) return 0;
  return p.n < 0n ? -1 : 1;
}

/** Whether `value` is a whole multiple of `step` ("190.05" of "0.01": yes; "190.005": no). */
export function isMultiple(value, step) {
  const [x, y] = align(must(value), must(step));
  return y !== 0n && x % y === 0n;
}

/** One spelling per value ("189.50" and "189.5" give "189.5"), for map keys. */
export function norm(text) {
  const p = must(text);
  let { n, scale } = p;
  while (scale > 0 && n % 10n === 0n) {
    n /= 10n;
    scale -= 1;
  }
  return format(n, scale);
}
