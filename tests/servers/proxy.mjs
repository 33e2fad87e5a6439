// Forwards a request to another origin and pipes the answer back (the front server's api hook
// uses it to put mfe-cache-server behind the test pages' origin). A failing upstream drops the
// connection, as an unreachable backend would. `body`, when given, is the request's body already
// read (by a test that looked at it first); otherwise the request is piped as it arrives.
import { request } from 'node:http';

export function proxy(req, res, origin, body) {
  return new Promise((resolve) => {
    const headers = body === undefined ? req.headers : { ...req.headers, 'content-length': Buffer.byteLength(body) };
    const upstream = request(new URL(req.url, origin), { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
      up.on('end', () => resolve(true));
    });
    upstream.on('error', () => {
      req.socket.destroy();
      resolve(true);
    });
    if (body === undefined) req.pipe(upstream);
    else upstream.end(body);
  });
}
