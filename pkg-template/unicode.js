// Strings with a lone surrogate (U+D800 to U+DFFF not in a pair) have no UTF-8 form: handed to
// the wasm they would become U+FFFD, and 'x\ud800' and 'x\udbff' would be one key.

/** Whether `s` is well-formed Unicode (no lone surrogate). */
export const isWellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(s);
