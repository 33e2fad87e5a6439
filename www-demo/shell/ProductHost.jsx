import { useEffect, useRef, useState } from 'react';

// Resolved at run time, not bundled: the product MFE is deployed on its own.
const PRODUCT_MFE_URL = new URL('../product/remoteEntry.js', import.meta.url).href;

let loading = null;
/** Loads the product MFE's bundle once per page. */
export function loadProductMfe() {
  loading ??= import(/* webpackIgnore: true */ PRODUCT_MFE_URL);
  return loading;
}

/** Mounts the product MFE (its own React root) while the products page is shown. */
export function ProductHost() {
  const slot = useRef(null);
  const [failure, setFailure] = useState(null);
  useEffect(() => {
    let mounted = null;
    let live = true;
    loadProductMfe()
      .then((remote) => {
        if (live) mounted = remote.mount(slot.current);
      })
      .catch((e) => live && setFailure(e));
    return () => {
      live = false;
      mounted?.unmount();
    };
  }, []);
  if (failure) {
    return (
      <div className="sh-empty" role="alert">
        The product MFE could not be loaded: {String(failure.message ?? failure)}
      </div>
    );
  }
  return (
    <div ref={slot} className="sh-remote" data-testid="product-mfe">
      <p className="sh-loading">Loading the product MFE…</p>
    </div>
  );
}
