// The benchmark's Server-Sent Events reader (the client's own reader is in the wasm core now):
// hands over every event of one network chunk at once.

/**
 * The longest line and the largest event accepted, in characters. An event carries one change,
 * and a change is at most a request body's size (the reference server's default limit is 1 MiB):
 * a stream past this is broken or hostile, and reading on would hold all of it in memory.
 */
export const MAX_EVENT_CHARS = 4 << 20;

/** Why a stream was given up: it broke the format's limits. */
export class StreamLimitError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StreamLimitError';
  }
}

/**
 * Reads `body` (a fetch response body) until it ends; calls `onEvents([{ id, event, data }])`
 * per chunk that completed events, and `onActivity()` per chunk that completed a line (events
 * and heartbeat comments: bytes that never make a line are not a sign of life). Throws a
 * `StreamLimitError` when a line or an event grows past `MAX_EVENT_CHARS`.
 */
export async function readEventStream(body, onEvents, onActivity) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let scanned = 0; // how much of `buffer` is known to hold no line end
  let id = null;
  let event = '';
  let data = [];
  let dataChars = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const events = [];
      let start = 0;
      for (let nl = buffer.indexOf('\n', scanned); nl >= 0; nl = buffer.indexOf('\n', start)) {
        let line = buffer.slice(start, nl);
        start = nl + 1;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) events.push({ id, event: event || 'message', data: data.join('\n') });
          id = null;
          event = '';
          data = [];
          dataChars = 0;
          continue;
        }
        if (line.charCodeAt(0) === 58 /* ':' comment (heartbeat) */) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let field = colon < 0 ? '' : line.slice(colon + 1);
        if (field.charCodeAt(0) === 32) field = field.slice(1);
        if (name === 'data') {
          dataChars += field.length + 1;
          if (dataChars > MAX_EVENT_CHARS) throw new StreamLimitError(`an event of the stream is larger than ${MAX_EVENT_CHARS} characters`);
          data.push(field);
        } else if (name === 'event') event = field;
        else if (name === 'id') id = field;
      }
      if (start > 0) {
        buffer = buffer.slice(start);
        onActivity();
      }
      scanned = buffer.length;
      if (buffer.length > MAX_EVENT_CHARS) throw new StreamLimitError(`a line of the stream is longer than ${MAX_EVENT_CHARS} characters`);
      if (events.length) onEvents(events);
    }
  } finally {
    reader.releaseLock?.();
  }
}
