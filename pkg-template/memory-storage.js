// @ts-check
// An in-memory object with the Web Storage interface: the fallback where localStorage is missing
// (SSR, workers, sandboxed iframes) and a handy storage for tests.
export class MemoryStorage {
  /** @type {Map<string, string>} */
  #items = new Map();

  get length() {
    return this.#items.size;
  }

  /** @param {number} index */
  key(index) {
    if (!Number.isInteger(index) || index < 0 || index >= this.#items.size) return null;
    let i = 0;
    for (const k of this.#items.keys()) if (i++ === index) return k;
    return null;
  }

  /** @param {string} key */
  getItem(key) {
    const v = this.#items.get(String(key));
    return v === undefined ? null : v;
  }

  /** @param {string} key @param {string} value */
  setItem(key, value) {
    this.#items.set(String(key), String(value));
  }

  /** @param {string} key */
  removeItem(key) {
    this.#items.delete(String(key));
  }

  clear() {
    this.#items.clear();
  }
}
