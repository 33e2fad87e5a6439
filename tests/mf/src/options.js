// The options every MFE of the test page gives the default cache: the same in the host and the
// remote, so that with one shared copy the remote's configureDefaultCache is a no-op.
export const OPTIONS = { backendUrl: null, prefix: 'mf_' };
