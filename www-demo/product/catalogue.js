// The product MFE's catalogue (static here; in production it would come from its own API).
export const CATALOGUE = Object.freeze([
  { id: 'espresso-beans', name: 'Espresso beans', detail: '1 kg · single origin', price: 24, hue: 24 },
  { id: 'kettle', name: 'Pour-over kettle', detail: 'Gooseneck · 1 l', price: 49, hue: 205 },
  { id: 'grinder', name: 'Burr grinder', detail: '40 grind settings', price: 129, hue: 265 },
  { id: 'dripper', name: 'Ceramic dripper', detail: 'Size 02', price: 19.5, hue: 340 },
  { id: 'filters', name: 'Paper filters', detail: '100 pieces', price: 6, hue: 48 },
  { id: 'frother', name: 'Milk frother', detail: 'Handheld · USB-C', price: 15, hue: 150 },
]);

/** Signed-in members get 10 % off. */
export const memberPrice = (price) => Math.round(price * 90) / 100;
