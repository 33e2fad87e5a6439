import { useEffect, useState, useSyncExternalStore } from 'react';
import { useSyncStatus } from 'mfe-shared-cache/react';
import { isOffline, onNetworkChange, setOffline } from './network-switch.js';

/**
 * Re-renders every second while mounted (TTL countdowns, "synced 3 s ago") and returns the time
 * of this render: a render caused by a cache change between two ticks must not show the last
 * tick's time, or an entry written just now would show more TTL than it was given.
 */
function useNow() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(id);
  }, []);
  return Date.now();
}

/** Every entry of the cache, refreshed on any change from anywhere and on sync progress. */
function useEntries(cache) {
  const [entries, setEntries] = useState(() => cache.entries());
  useEffect(() => {
    const refresh = () => setEntries(cache.entries());
    refresh();
    const offChange = cache.on('change', refresh);
    const offSync = cache.on('sync', refresh); // acknowledgements change `pending`, not values
    return () => {
      offChange();
      offSync();
    };
  }, [cache]);
  return entries;
}

const useOffline = () => useSyncExternalStore(onNetworkChange, isOffline);

function ttlLeft(expiresAt, now) {
  if (expiresAt === null) return '∞';
  const s = Math.max(0, Math.ceil((expiresAt - now) / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

function ago(at, now) {
  if (at === null) return 'never';
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 1 ? 'just now' : `${s} s ago`;
}

// How the leader learns of other devices' changes, for every tab of the origin.
const HOW = {
  open: 'pushed by the server',
  connecting: 'opening the event stream',
  retrying: 'polling until the stream reopens',
  unsupported: 'polling (the backend has no push)',
  off: 'polling',
};

function InstanceStatus({ name, cache, now }) {
  const s = useSyncStatus({ cache });
  const state = !s.online ? 'offline' : s.syncing ? 'syncing' : s.failures > 0 ? 'retrying' : 'online';
  return (
    <tr data-testid={`instance-${name}`}>
      <td>
        <strong>{name}</strong> <code>{cache.nodeId}</code>
      </td>
      <td>
        <span className={`dp-dot ${state}`} /> {state}
      </td>
      <td data-testid={`leader-${name}`}>{s.leader ? `leader: ${HOW[s.realtime] ?? s.realtime}` : 'follower'}</td>
      <td className="num" data-testid={`pending-${name}`}>
        {s.pending}
      </td>
      <td>{ago(s.lastSyncedAt, now)}</td>
      <td className="dp-error">{s.lastError ?? ''}</td>
    </tr>
  );
}

export function DevPanel({ instances }) {
  const [open, setOpen] = useState(true);
  const shell = instances[0].cache;
  const entries = useEntries(shell);
  const now = useNow();
  const offline = useOffline();
  const writerName = new Map(instances.map((i) => [i.cache.nodeId, i.name]));
  const pending = entries.filter((e) => e.pending).length;

  return (
    <aside className={`dp ${open ? 'open' : ''}`} aria-label="Cache inspector" data-testid="dev-panel">
      <div className="dp-bar">
        <button type="button" className="dp-toggle" onClick={() => setOpen(!open)} aria-expanded={open}>
          Cache inspector
        </button>
        <span className="dp-summary" data-testid="dp-summary">
          {entries.length} entries · {pending} waiting for the server · tabs via {shell.tabLink}
        </span>
        <label className="dp-switch">
          <input type="checkbox" checked={offline} onChange={(e) => setOffline(e.target.checked)} data-testid="offline-toggle" />
          Offline
        </label>
        <button type="button" className="ghost" onClick={() => shell.clear()}>
          Clear cache
        </button>
      </div>
      {open && (
        <div className="dp-body">
          <table className="dp-table">
            <caption>Instances on this page (each MFE bundles its own copy of the package)</caption>
            <thead>
              <tr>
                <th>MFE · writer id</th>
                <th>Backend</th>
                <th>Role</th>
                <th className="num">Outbox</th>
                <th>Last sync</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {instances.map((i) => (
                <InstanceStatus key={i.name} name={i.name} cache={i.cache} now={now} />
              ))}
            </tbody>
          </table>
          <table className="dp-table" data-testid="dp-entries">
            <caption>Entries (prefix {shell.options.prefix})</caption>
            <thead>
              <tr>
                <th>Key</th>
                <th>Value</th>
                <th>Expires in</th>
                <th>Written by</th>
                <th>Server</th>
              </tr>
            </thead>
            <tbody>
              {entries.length === 0 && (
                <tr>
                  <td colSpan={5} className="dp-none">
                    The cache is empty.
                  </td>
                </tr>
              )}
              {entries.map((e) => (
                <tr key={e.key} data-testid={`entry-${e.key}`}>
                  <td>
                    <code>{e.key}</code>
                  </td>
                  <td className="dp-value">
                    <code>{JSON.stringify(e.value)}</code>
                  </td>
                  <td className="dp-ttl" data-testid={`ttl-${e.key}`}>{ttlLeft(e.expiresAt, now)}</td>
                  <td>
                    {e.app ?? 'unnamed app'}
                    {writerName.has(e.writer) ? ' MFE, this tab' : ' MFE, another tab, device or earlier page load'}{' '}
                    <code className="dp-dim">{e.writer}</code>
                  </td>
                  <td data-testid={`sync-${e.key}`}>{e.pending ? 'pending' : 'synced'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </aside>
  );
}
