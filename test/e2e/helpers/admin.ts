/** The admin socket as a scraper reads it: GET with node's http client, as Prometheus' unix-socket proxies do. */
import { request } from 'node:http';

export const adminGet = (socket: string, path: string): Promise<{ status: number; type: string; body: string }> =>
  new Promise((done, fail) => {
    const req = request({ socketPath: socket, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', fail);
    req.end();
  });
