// The start-up sections' (first render, first visit) cold page loads, and their rounds.

/**
 * One cold page load: a new browser context (empty storage, no HTTP cache) with Chromium's CPU
 * throttling, the page's errors collected. `result` runs in the page and returns the figures once
 * they are there (undefined until then).
 */
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

/**
 * `rounds` rounds of one `load(variant)` per variant, the variants' order rotated each round (so
 * each goes first as often), after a round that warms the browser and is dropped:
 * `{ [variant]: [result of each round] }`, the results of one round at one index.
 */
export async function interleaved(rounds, variants, load) {
  const runs = Object.fromEntries(variants.map((v) => [v, []]));
  for (let i = 0; i <= rounds; i++) {
    for (let j = 0; j < variants.length; j++) {
      const variant = variants[(i + j) % variants.length];
      const result = await load(variant);
      if (i > 0) runs[variant].push(result);
    }
  }
  return runs;
}
