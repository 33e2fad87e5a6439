/** An offline switch of the app's own, in place of the inspector's (which holds this page only). */
export interface OfflineSwitch {
  isOffline(): boolean;
  setOffline(offline: boolean): void;
  /** Calls `listener` when the state changes; returns the function that stops. */
  onChange(listener: () => void): () => void;
}

export interface DevtoolsOptions {
  /** Start expanded (default true). */
  open?: boolean | undefined;
  offline?: OfflineSwitch | undefined;
}

/**
 * Mounts the cache inspector at the end of `target` (default: the document's body): every cache
 * instance on the page (of every copy of the package), every entry with its TTL counting down,
 * and a live event log, with a filter and an offline switch. Returns the function that unmounts it.
 */
export function mountDevtools(target?: Element, options?: DevtoolsOptions): () => void;
