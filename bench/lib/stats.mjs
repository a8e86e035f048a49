/** Median / spread helpers and figure construction for bench result files. */

export function median(xs) {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function spread(xs) {
  const s = xs.filter((x) => Number.isFinite(x));
  return s.length ? [Math.min(...s), Math.max(...s)] : [NaN, NaN];
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `{value: median, spread: [min, max]}` of the samples, rounded. */
export function summarize(xs, digits = 3) {
  const [lo, hi] = spread(xs);
  return { value: round(median(xs), digits), spread: [round(lo, digits), round(hi, digits)] };
}

/**
 * Build a figure of the contract. `samples` / `baselineSamples` are per-round values.
 * `check(value, ratio)` decides `met` (omit → met: null).
 */
export function figure({ id, label, unit, samples, value, spread: sp, baseline = null, baselineSamples, baselineLabel, goal = '', check, note = '', digits = 3, extra = {} }) {
  const subj = samples ? summarize(samples, digits) : { value, spread: sp ?? [value, value] };
  let base = baseline;
  if (baselineSamples) base = { label: baselineLabel ?? 'baseline', ...summarize(baselineSamples, digits) };
  const ratio = base && Number.isFinite(base.value) && base.value !== 0 ? round(subj.value / base.value, 3) : null;
  const met = check ? Boolean(check(subj.value, ratio)) : null;
  return { id, label, unit, value: subj.value, spread: subj.spread, baseline: base, ratio, goal, met, note, ...extra };
}
