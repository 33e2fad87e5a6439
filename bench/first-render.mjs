// First render: a two-root React app built with Vite (bench/first-render/), one root reading a
// value through the cache and one never touching it, against the same app without the package.
// Each run is cold (a new browser context, answers marked no-store) and measures when each root's
// first layout effect ran, in ms since navigation started, at normal CPU speed and throttled 4×.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ensureInstalled, serveDirectory, sh } from '../tests/browser/harness.mjs';
import { loadCold } from './cold-page.mjs';
import { fmt, median, signed, spread } from './stats.mjs';

const APP = join(ROOT, 'bench', 'first-render');
const OUT = join(ROOT, 'target', 'first-render');
const ROUNDS = 21;

/** The app's packages (when missing or older than the lock file), then the Vite builds. */
async function buildApps() {
  await ensureInstalled(APP);
  await sh(process.execPath, ['build.mjs', OUT], APP, 300_000);
}

/** One cold load: `{ cart, plain }`, each root's first layout effect (ms since navigation). */
const load = (browser, url, rate) =>
  loadCold(browser, url, rate, () => {
    const times = window.__firstLayout;
    return times?.cart !== undefined && times?.plain !== undefined ? times : undefined;
  }, 'first render');

export async function benchFirstRender(browser, report) {
  await buildApps();
  const [withCache, without] = [await serveDirectory(join(OUT, 'with')), await serveDirectory(join(OUT, 'without'))];
  try {
    for (const rate of [1, 4]) {
      const runs = { with: [], without: [] };
      // Alternating, the order flipped every round; round 0 warms the browser and is dropped.
      for (let i = 0; i <= ROUNDS; i++) {
        for (const variant of i % 2 ? ['with', 'without'] : ['without', 'with']) {
          const t = await load(browser, variant === 'with' ? withCache.url : without.url, rate);
          if (i > 0) runs[variant].push(t);
        }
      }
      const whole = (xs) => xs.map((t) => Math.max(t.cart, t.plain));
      const plain = (xs) => xs.map((t) => t.plain);
      const ms = (xs) => `${fmt(median(xs), 1)} ms ${spread(xs, 1)}`;
      // The median of each round's difference: the two loads of a round ran back to back, so
      // they share the machine's state, which moves the loads' times by more than the package.
      const extra = (a, b) => median(a.map((x, i) => x - b[i]));
      const app = extra(whole(runs.with), whole(runs.without));
      report.row(
        `first render, two React roots, CPU ${rate}× (ms from navigation)`,
        ms(whole(runs.with)),
        `without the package ${ms(whole(runs.without))}`,
        `${signed(app, 1)} ms`,
        rate === 1 ? '≤ +15 ms' : '—',
        rate === 1 ? (app <= 15 ? 'yes' : 'NO') : '',
      );
      report.row(
        `… the root that never uses the cache, CPU ${rate}×`,
        ms(plain(runs.with)),
        `without the package ${ms(plain(runs.without))}`,
        `${signed(extra(plain(runs.with), plain(runs.without)), 1)} ms`,
        '—',
      );
    }
    const size = (variant) => {
      const html = readFileSync(join(OUT, variant, 'index.html'), 'utf8');
      const script = html.match(/src="\/?(assets\/[^"]+\.js)"/)?.[1];
      return script ? statSync(join(OUT, variant, script)).size : NaN;
    };
    report.note(
      `first render: the app of bench/first-render (Vite, React 19, two roots in one bundle: ${size('with').toLocaleString('en-US')} B minified with the package, ` +
        `${size('without').toLocaleString('en-US')} B without), loaded cold ${ROUNDS} times each in a new context with Chromium's CPU throttling; ` +
        `the time is the later of the two roots' first layout effect (performance.now(), from navigation start), median [min…max]; ` +
        `the difference is the median of the rounds' paired differences`,
    );
  } finally {
    await withCache.close();
    await without.close();
  }
}
