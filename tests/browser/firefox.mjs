// Debian's firefox-esr, headless, driven over WebDriver BiDi by puppeteer-core, behind the part of
// playwright-core's API the browser tests use (contexts, pages, evaluate, waitForFunction, init
// scripts, console and page errors, reload), so that the same tests run in Firefox
// (`BROWSER=firefox`). Playwright itself cannot drive a stock Firefox ESR.
import puppeteer from 'puppeteer-core';

const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';

/**
 * Runs a test's function in the page and returns a copy of its result in which no object appears
 * twice: WebDriver BiDi sends a second occurrence as a reference, which puppeteer gives back as
 * undefined (playwright, and the tests, expect the value again).
 */
async function IN_PAGE(source, arg) {
  const result = await (0, eval)(`(\n${source}\n)`)(arg);
  const copy = (v) =>
    Array.isArray(v) ? v.map(copy) : v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) : v;
  return copy(result);
}

/** A playwright-like page over a puppeteer one. */
function pageOf(page, initScripts) {
  const listeners = { console: [], pageerror: [] };
  page.on('console', (m) => listeners.console.forEach((f) => f({ type: () => m.type(), text: () => m.text() })));
  page.on('pageerror', (e) => listeners.pageerror.forEach((f) => f(e)));
  const wrapped = {
    on(event, f) {
      listeners[event]?.push(f);
      return wrapped;
    },
    goto: (url) => page.goto(url),
    reload: () => page.reload(),
    url: () => page.url(),
    close: () => page.close(),
    evaluate: (fn, arg) => (typeof fn === 'function' ? page.evaluate(IN_PAGE, String(fn), arg) : page.evaluate(fn)),
    async addInitScript(fn, arg) {
      await page.evaluateOnNewDocument(fn, arg);
    },
    async waitForFunction(fn, arg, { timeout = 30_000, polling = 'raf' } = {}) {
      const handle = await page.waitForFunction(fn, { timeout, polling }, arg);
      return { jsonValue: () => handle.jsonValue() };
    },
  };
  return Promise.all(initScripts.map((s) => page.evaluateOnNewDocument(s.fn, s.arg))).then(() => wrapped);
}

/** A playwright-like browser: `newContext()` is a separate BiDi user context (its own storage). */
export async function launchFirefox() {
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, protocolTimeout: 60_000 });
  return {
    version: () => browser.version(),
    close: () => browser.close(),
    async newContext() {
      const context = await browser.createBrowserContext();
      const initScripts = [];
      return {
        async newPage() {
          return pageOf(await context.newPage(), initScripts);
        },
        async addInitScript(fn, arg) {
          initScripts.push({ fn, arg });
        },
        close: () => context.close(),
      };
    },
  };
}
