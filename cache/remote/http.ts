// An HTTP remote cache with Bazel's layout under a base URL: GET / HEAD / PUT of `<base>/cas/<sha256>` and
// `<base>/ac/<sha256>`, with Content-Length (no chunked uploads), so nginx with `dav_methods PUT`,
// bazel-remote and any WebDAV server serve it. Auth: basic from the URL's user:password, else
// `Authorization: Bearer $RUNNER_REMOTE_TOKEN`; neither ever leaves this file except as that header.
import type { OutgoingHttpHeaders } from 'node:http';
import { redactUrl, type BackendOptions, type ObjectKey, type PutBody, type RemoteBackend } from './backend.js';
import { Connections, discard, statusError } from './http-request.js';

export class HttpBackend implements RemoteBackend {
  readonly display: string;
  private readonly base: URL;
  private readonly headers: OutgoingHttpHeaders = {};
  private readonly connections: Connections;

  constructor(url: URL, options: BackendOptions) {
    this.display = redactUrl(url.toString()).replace(/\/$/, '');
    const base = new URL(url.toString());
    if (base.username || base.password) {
      const user = decodeURIComponent(base.username);
      const password = decodeURIComponent(base.password);
      this.headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      base.username = '';
      base.password = '';
    } else if (options.env['RUNNER_REMOTE_TOKEN']) {
      this.headers['authorization'] = `Bearer ${options.env['RUNNER_REMOTE_TOKEN']}`;
    }
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.connections = new Connections(options.connections, options.timeoutMs);
  }

  private url(key: ObjectKey): URL {
    return new URL(key, this.base);
  }

  async has(key: ObjectKey): Promise<boolean> {
    const what = `HEAD ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'HEAD', url: this.url(key), headers: this.headers, what });
    if (response.statusCode === 404) return discard(response).then(() => false);
    if (response.statusCode === 200) return discard(response).then(() => true);
    throw statusError(response, what);
  }

  async get(key: ObjectKey): Promise<{ body: import('node:stream').Readable; size?: number } | undefined> {
    const what = `GET ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'GET', url: this.url(key), headers: this.headers, what });
    if (response.statusCode === 404) return discard(response).then(() => undefined);
    if (response.statusCode !== 200) throw statusError(response, what);
    const length = response.headers['content-length'];
    return length === undefined ? { body: response } : { body: response, size: Number(length) };
  }

  async put(key: ObjectKey, body: PutBody): Promise<void> {
    const what = `PUT ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'PUT', url: this.url(key), headers: this.headers, body, what });
    // nginx answers 201 for a new file and 204 for a replaced one; bazel-remote 200.
    if (response.statusCode === 200 || response.statusCode === 201 || response.statusCode === 204) return discard(response);
    throw statusError(response, what);
  }

  close(): void {
    this.connections.close();
  }
}
