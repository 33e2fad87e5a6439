// Every hook of the package in one tree, each rendering what it holds as text, so that any
// difference between the server's render and the hydration render shows as a mismatch.
import { createElement as h } from 'react';
import { useSharedCache, useSharedQuery, useSyncStatus } from 'mfe-shared-cache/react';

function Greeting() {
  const [greeting] = useSharedCache('greeting', 'hello from the server');
  return h('p', { id: 'greeting' }, greeting);
}

function Profile() {
  const { data, isLoading, isStale, error } = useSharedQuery('profile', async () => ({ name: 'loaded' }));
  return h('p', { id: 'profile' }, `${data?.name ?? 'none'} loading=${isLoading} stale=${isStale} error=${error?.type ?? 'none'}`);
}

function Status() {
  const s = useSyncStatus();
  return h('p', { id: 'status' }, `enabled=${s.enabled} backend=${s.backend} realtime=${s.realtime} pending=${s.pending}`);
}

export function App() {
  return h('main', null, h(Greeting), h(Profile), h(Status));
}
