// Forwards a request to another origin and pipes the answer back (the front server's api hook
// uses it to put mfe-cache-server behind the test pages' origin). A failing upstream drops the
// connection, as an unreachable backend would.
import { request } from 'node:http';

export function proxy(req, res, origin) {
  return new Promise((resolve) => {
    const upstream = request(new URL(req.url, origin), { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
      up.on('end', () => resolve(true));
    });
    upstream.on('error', () => {
      req.socket.destroy();
      resolve(true);
    });
    req.pipe(upstream);
  });
}
