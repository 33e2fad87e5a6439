// One cold page load for the start-up sections (first render, first visit): a new browser context
// (empty storage, no HTTP cache) with Chromium's CPU throttling, the page's errors collected.
// `result` runs in the page and returns the figures once they are there (undefined until then).

export async function loadCold(browser, url, rate, result, what) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate });
    await page.goto(url);
    const figures = await (await page.waitForFunction(result, null, { timeout: 30000 })).jsonValue();
    if (errors.length) throw new Error(`${what}: page errors: ${errors.join('; ')}`);
    return figures;
  } finally {
    await context.close();
  }
}
