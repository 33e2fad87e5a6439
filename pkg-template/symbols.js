// @ts-check
// What the package's entries call on instances and scopes beyond their public API. Symbol.for
// gives one symbol per page, so an instance made by one bundled copy of the package answers the
// React entry of another.

/** Reads an expired value still held (stale-while-revalidate). */
export const READ_STALE = Symbol.for('mfe-shared-cache.readStale.v1');
/** Reports an error to the instance's 'error' listeners (the React entry's setters use it). */
export const REPORT = Symbol.for('mfe-shared-cache.report.v1');
/** `[writtenAt, writer]` of a key's value (expired or not), or null (the React entry's refetchInterval). */
export const WRITTEN = Symbol.for('mfe-shared-cache.written.v1');
