// @ts-check
// Structured logging: records `{ level, message, key?, duration?, attempt?, error? }` to a logger
// function, or to the console. Quiet by default: only warnings (errors nobody listens to).

export const LOG_LEVELS = Object.freeze({ silent: 0, error: 1, warn: 2, info: 3, debug: 4 });

/** @param {{ level: string, message: string, [field: string]: unknown }} record */
function toConsole(record) {
  const { level, message, ...fields } = record;
  /** @type {'debug' | 'info' | 'error' | 'warn'} */
  const method = level === 'debug' ? 'debug' : level === 'info' ? 'info' : level === 'error' ? 'error' : 'warn';
  const extra = Object.keys(fields).length ? [fields] : [];
  console[method](`[mfe-shared-cache] ${message}`, ...extra);
}

/**
 * A `log(level, message, fields?)` function for the options `logLevel` and `logger`.
 * @param {string} logLevel
 * @param {((record: any) => void) | null | undefined} logger
 * @returns {(level: string, message: string, fields?: object) => void}
 */
export function makeLog(logLevel, logger) {
  /** @type {Record<string, number>} */
  const levels = LOG_LEVELS;
  const threshold = levels[logLevel] ?? 0;
  const sink = logger ?? toConsole;
  return (level, message, fields) => {
    if ((levels[level] ?? 0) > threshold) return;
    try {
      sink({ level, message, ...fields });
    } catch {
      // A broken logger must not break the cache.
    }
  };
}
