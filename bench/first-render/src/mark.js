// Records when a root's first layout effect ran (ms since navigation started).
import { useLayoutEffect } from 'react';

export function Mark({ name, children }) {
  useLayoutEffect(() => {
    (window.__firstLayout ??= {})[name] ??= performance.now();
  }, []);
  return children;
}
