// The host's entry: an asynchronous boundary first, as Module Federation wants, so that shared
// modules are agreed on before the application's own modules run.
import('./bootstrap.js').catch((e) => (window.__failed ??= String(e?.stack ?? e)));
