// A first visit's start-up tax, without an app around it: in a fresh browser context (empty
// storage, nothing cached), the page bench/startup.html imports the package untimed, then times
// its first cache from before the constructor to after the first `get`, in phases. The baseline
// does by hand what a cross-tab cache needs at start: the first read (getItem + JSON.parse), a
// `storage` listener and a BroadcastChannel. The first-render rows carry React, Vite and the
// bundle's download around the same cost, and move by more than it between runs.
import { interleaved, loadCold } from './cold-page.mjs';
import { fmt, median, pairedDifference, signed, spread } from './stats.mjs';

const ROUNDS = 15;

async function load(browser, url, rate) {
  const r = await loadCold(browser, url, rate, () => window.__startup, 'first visit');
  if (r.failed) throw new Error(`first visit: ${r.failed}`);
  if (!r.ok) throw new Error('first visit: the first get of an empty cache was not null');
  return r;
}

export async function benchFirstVisit(browser, url, report) {
  const page = `${url}/bench/startup.html`;
  for (const rate of [1, 4]) {
    const runs = await interleaved(ROUNDS, ['naive', 'cache'], (variant) => load(browser, variant === 'naive' ? `${page}?naive` : page, rate));
    const total = (xs) => xs.map((r) => r.total);
    const ms = (xs) => `${fmt(median(xs), 1)} ms ${spread(xs, 1)}`;
    const extra = pairedDifference(total(runs.cache), total(runs.naive));
    report.row(
      `first visit: first cache made + first get, fresh context, CPU ${rate}× [diagnostic]`,
      ms(total(runs.cache)),
      `by hand (getItem, JSON.parse, storage listener, BroadcastChannel) ${ms(total(runs.naive))}`,
      `${signed(extra, 1)} ms`,
      '—',
    );
    const phase = (name) => fmt(median(runs.cache.map((r) => r[name])), 1);
    report.note(
      `first visit, CPU ${rate}×: ${ROUNDS} alternated loads each of bench/startup.html, each in a new context (empty storage); medians of the cache's phases: ` +
        `loading the wasm (decoding its text, compiling, instantiating) ${phase('wasm')} ms, the constructor ${phase('constructor')} ms, the first get ${phase('get')} ms; ` +
        `the difference is the median of the paired differences`,
    );
  }
}
