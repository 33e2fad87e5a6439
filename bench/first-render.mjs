// First render: a two-root React app built with Vite (bench/first-render/), one root reading a
// value through the cache and one never touching it, against the same app without the package;
// and both again with the root that reads the value loaded as its own chunk (`import()`), as a
// Module Federation remote is. Each run is cold (a new browser context, answers marked no-store)
// and measures when each root's first layout effect ran, in ms since navigation started, at
// normal CPU speed and throttled 4×.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ensureInstalled, serveDirectory, sh } from '../tests/browser/harness.mjs';
import { interleaved, loadCold } from './cold-page.mjs';
import { fmt, median, pairedDifference, signed, spread } from './stats.mjs';

const APP = join(ROOT, 'bench', 'first-render');
const OUT = join(ROOT, 'target', 'first-render');
const ROUNDS = 21;
// Each build's directory and page (build.mjs makes them).
const VARIANTS = { with: 'index.html', without: 'index.html', 'split-with': 'split.html', 'split-without': 'split.html' };

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

/** The bytes of the scripts `variant`'s page loads, minified: `[entry, chunk loaded later]`. */
function scriptSizes(variant) {
  const dir = join(OUT, variant);
  const html = readFileSync(join(dir, VARIANTS[variant]), 'utf8');
  const entry = html.match(/src="\/?(assets\/[^"]+\.js)"/)?.[1];
  if (!entry) return [NaN, 0];
  const code = readFileSync(join(dir, entry), 'utf8');
  const chunks = [...code.matchAll(/import\([`"']\.\/([^`"']+\.js)[`"']\)/g)].map((m) => statSync(join(dir, 'assets', m[1])).size);
  return [statSync(join(dir, entry)).size, chunks.reduce((a, b) => a + b, 0)];
}

export async function benchFirstRender(browser, report) {
  await buildApps();
  const servers = {};
  for (const variant of Object.keys(VARIANTS)) servers[variant] = await serveDirectory(join(OUT, variant));
  try {
    for (const rate of [1, 4]) {
      const runs = await interleaved(ROUNDS, Object.keys(VARIANTS), (variant) => load(browser, `${servers[variant].url}/${VARIANTS[variant]}`, rate));
      const whole = (xs) => xs.map((t) => Math.max(t.cart, t.plain));
      const plain = (xs) => xs.map((t) => t.plain);
      const ms = (xs) => `${fmt(median(xs), 1)} ms ${spread(xs, 1)}`;
      // Paired by round: the loads of a round ran back to back, so they share the machine's
      // state, which moves the loads' times by more than the package.
      const row = (label, of, variant, goal) => {
        const base = variant === 'with' ? 'without' : 'split-without';
        const d = pairedDifference(of(runs[variant]), of(runs[base]));
        report.row(label, ms(of(runs[variant])), `without the package ${ms(of(runs[base]))}`, `${signed(d, 1)} ms`, goal ?? '—', goal ? (d <= 15 ? 'yes' : 'NO') : '');
      };
      row(`first render, two React roots, CPU ${rate}× (ms from navigation)`, whole, 'with', rate === 1 ? '≤ +15 ms' : undefined);
      row(`… the root that never uses the cache, CPU ${rate}×`, plain, 'with');
      row(`… the cache's root as its own chunk (import()): both roots, CPU ${rate}×`, whole, 'split-with');
      row(`… its root that never uses the cache, CPU ${rate}×`, plain, 'split-with');
    }
    const [withEntry] = scriptSizes('with');
    const [splitEntry, splitChunk] = scriptSizes('split-with');
    const [withoutEntry] = scriptSizes('without');
    const b = (n) => `${n.toLocaleString('en-US')} B`;
    report.note(
      `first render: the app of bench/first-render (Vite, React 19, two roots: ${b(withEntry)} minified in one bundle with the package, ` +
        `${b(withoutEntry)} without it; with the root that reads the value as its own chunk, ${b(splitEntry)} first and ${b(splitChunk)} loaded by import(), ` +
        `against the same split app without the package), ` +
        `loaded cold ${ROUNDS} times each in a new context with Chromium's CPU throttling; ` +
        `the time is the later of the two roots' first layout effect (performance.now(), from navigation start), median [min…max]; ` +
        `the difference is the median of the rounds' paired differences`,
    );
  } finally {
    for (const server of Object.values(servers)) await server.close();
  }
}
