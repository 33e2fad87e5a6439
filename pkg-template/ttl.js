// TTLs: seconds as a number, or a human string ("90", "5m", "1h", "2 days", "1h 30m", "500ms").
import { CacheError, describe } from './errors.js';

const SECONDS = {
  ms: 0.001, msec: 0.001, millisecond: 0.001, milliseconds: 0.001,
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
};
const PART = /(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*/y;

/** `ttl` in seconds (finite, >= 0), or throws INVALID_TTL naming `what`. */
export function ttlSeconds(ttl, what = 'ttl') {
  const bad = (why) => new CacheError('INVALID_TTL', `${what} ${why}, got ${describe(ttl)}`);
  if (typeof ttl === 'number') {
    if (!Number.isFinite(ttl) || ttl < 0) throw bad('must be a finite number of seconds >= 0');
    return ttl;
  }
  if (typeof ttl !== 'string') throw bad('must be seconds or a duration such as "5m", "1h", "2 days"');
  const text = ttl.trim();
  if (text === '') throw bad('must not be empty');
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (!m || m.index !== at) throw bad('is not a duration (use e.g. "30s", "5m", "1h 30m", "2 days")');
    const unit = m[2].toLowerCase();
    const scale = unit === '' ? 1 : SECONDS[unit];
    if (scale === undefined) throw bad(`has an unknown unit ${JSON.stringify(m[2])} (ms, s, m, h, d, w)`);
    total += Number(m[1]) * scale;
  }
  if (!Number.isFinite(total)) throw bad('is too large');
  return total;
}
