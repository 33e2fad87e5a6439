// The product MFE's catalogue comes from its own API (here a static catalogue.json deployed with
// the bundle), loaded through the shared cache: one request per origin however many tabs ask.
const CATALOGUE_URL = new URL('./catalogue.json', import.meta.url).href;

export async function fetchCatalogue() {
  const res = await fetch(CATALOGUE_URL);
  // 5xx and 429 are retried by getOrFetch; anything else is final.
  if (!res.ok) throw Object.assign(new Error(`catalogue: HTTP ${res.status}`), { status: res.status });
  return res.json();
}

/** Signed-in members get 10 % off. */
export const memberPrice = (price) => Math.round(price * 90) / 100;
