// A Server-Sent Events reader over fetch: unlike EventSource it sends the cache's `headers`
// (Authorization), and it hands over every event of one network chunk at once, so a burst of
// pushed changes costs one call into the cache.

/**
 * Reads `body` (a fetch response body) until it ends; calls `onEvents([{ id, event, data }])`
 * per chunk that completed events, and `onActivity()` per chunk (heartbeats included).
 */
export async function readEventStream(body, onEvents, onActivity) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id = null;
  let event = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffer += decoder.decode(value, { stream: true });
      const events = [];
      let start = 0;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n', start)) {
        let line = buffer.slice(start, nl);
        start = nl + 1;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) events.push({ id, event: event || 'message', data: data.join('\n') });
          id = null;
          event = '';
          data = [];
          continue;
        }
        if (line.charCodeAt(0) === 58 /* ':' comment (heartbeat) */) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let field = colon < 0 ? '' : line.slice(colon + 1);
        if (field.charCodeAt(0) === 32) field = field.slice(1);
        if (name === 'data') data.push(field);
        else if (name === 'event') event = field;
        else if (name === 'id') id = field;
      }
      buffer = buffer.slice(start);
      if (events.length) onEvents(events);
    }
  } finally {
    reader.releaseLock?.();
  }
}
