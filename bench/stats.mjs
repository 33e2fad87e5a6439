// Number formatting and order statistics shared by the benchmark's sections.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
/** A difference with its sign: `+1.5`, `-0.4`. */
export const signed = (x, digits = 2) => `${x >= 0 ? '+' : ''}${fmt(x, digits)}`;
export const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
/** The median of the pairs' ratios / differences: the two runs of a pair share the machine's state. */
export const pairedRatio = (ours, base) => median(ours.map((x, i) => x / base[i]));
export const pairedDifference = (ours, base) => median(ours.map((x, i) => x - base[i]));
/** `[min…max]` of a few rounds. */
export const spread = (xs, digits) => `[${fmt(Math.min(...xs), digits)}…${fmt(Math.max(...xs), digits)}]`;
