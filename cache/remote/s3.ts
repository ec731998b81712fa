// S3 (and S3-compatible servers) as a remote: `s3://bucket/prefix` holds `<prefix>/cas/<sha256>` and
// `<prefix>/ac/<sha256>`. Requests are signed with SigV4 by the aws4 package; credentials and region come from
// the standard AWS environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_REGION or AWS_DEFAULT_REGION), and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL point at another server
// (path-style addressing then, which MinIO, Ceph and s3rver all take).
import type { OutgoingHttpHeaders } from 'node:http';
import aws4 from 'aws4';
import { XMLParser } from 'fast-xml-parser';
import { RemoteError, type BackendOptions, type ListedObject, type ObjectKey, type PutBody, type RemoteBackend } from './backend.js';
import { Connections, discard, statusError } from './http-request.js';

/** sha256 of no bytes: the payload digest of a request without a body. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export class S3Backend implements RemoteBackend {
  readonly display: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly endpoint: URL;
  private readonly pathStyle: boolean;
  private readonly region: string;
  private readonly credentials: { accessKeyId?: string; secretAccessKey?: string; sessionToken?: string };
  private readonly connections: Connections;

  constructor(url: URL, options: BackendOptions) {
    const env = options.env;
    this.bucket = url.hostname;
    this.prefix = url.pathname.replace(/^\/+|\/+$/g, '');
    this.display = `s3://${this.bucket}${this.prefix ? '/' + this.prefix : ''}`;
    this.region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
    const endpoint = env['AWS_ENDPOINT_URL_S3'] ?? env['AWS_ENDPOINT_URL'];
    this.pathStyle = endpoint !== undefined;
    this.endpoint = new URL(endpoint ?? `https://${this.bucket}.s3.${this.region}.amazonaws.com`);
    this.credentials = {};
    if (env['AWS_ACCESS_KEY_ID']) this.credentials.accessKeyId = env['AWS_ACCESS_KEY_ID'];
    if (env['AWS_SECRET_ACCESS_KEY']) this.credentials.secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
    if (env['AWS_SESSION_TOKEN']) this.credentials.sessionToken = env['AWS_SESSION_TOKEN'];
    if (!this.credentials.accessKeyId || !this.credentials.secretAccessKey) {
      throw new RemoteError(`${this.display}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an s3:// remote`, false);
    }
    this.connections = new Connections(options.connections, options.timeoutMs);
  }

  /** The request path of an object key (or of the bucket, for listing). */
  private path(key: string): string {
    const objectKey = this.prefix ? `${this.prefix}/${key}` : key;
    const encoded = objectKey.split('/').map(encodeURIComponent).join('/');
    const basePath = this.endpoint.pathname.replace(/\/$/, '');
    return this.pathStyle ? `${basePath}/${this.bucket}${key === '' && !this.prefix ? '' : '/' + encoded}` : `/${encoded}`;
  }

  private signed(method: 'GET' | 'HEAD' | 'PUT' | 'DELETE', path: string, payloadSha256: string, extra: OutgoingHttpHeaders = {}): { url: URL; headers: OutgoingHttpHeaders } {
    const request = {
      host: this.endpoint.host,
      path,
      method,
      service: 's3',
      region: this.region,
      headers: { 'X-Amz-Content-Sha256': payloadSha256, ...extra } as Record<string, string>,
    };
    aws4.sign(request, this.credentials);
    return { url: new URL(`${this.endpoint.protocol}//${this.endpoint.host}${path}`), headers: request.headers };
  }

  async has(key: ObjectKey): Promise<boolean> {
    const what = `HEAD ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'HEAD', ...this.signed('HEAD', this.path(key), EMPTY_SHA256), what });
    if (response.statusCode === 404) return discard(response).then(() => false);
    if (response.statusCode === 200) return discard(response).then(() => true);
    throw statusError(response, what);
  }

  async get(key: ObjectKey): Promise<{ body: import('node:stream').Readable; size?: number } | undefined> {
    const what = `GET ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'GET', ...this.signed('GET', this.path(key), EMPTY_SHA256), what });
    if (response.statusCode === 404) return discard(response).then(() => undefined);
    if (response.statusCode !== 200) throw statusError(response, what);
    const length = response.headers['content-length'];
    return length === undefined ? { body: response } : { body: response, size: Number(length) };
  }

  async put(key: ObjectKey, body: PutBody, sha256: string): Promise<void> {
    const what = `PUT ${this.display}/${key}`;
    // The payload's sha256 is signed: S3 rejects a body that doesn't match it, a second integrity check.
    const response = await this.connections.send({ method: 'PUT', ...this.signed('PUT', this.path(key), sha256), body, what });
    if (response.statusCode === 200) return discard(response);
    throw statusError(response, what);
  }

  async remove(key: ObjectKey): Promise<void> {
    const what = `DELETE ${this.display}/${key}`;
    const response = await this.connections.send({ method: 'DELETE', ...this.signed('DELETE', this.path(key), EMPTY_SHA256), what });
    if (response.statusCode === 204 || response.statusCode === 200 || response.statusCode === 404) return discard(response);
    throw statusError(response, what);
  }

  /** ListObjectsV2, page by page. */
  async *list(prefix: 'cas/' | 'ac/'): AsyncIterable<ListedObject> {
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const parser = new XMLParser({ isArray: (name) => name === 'Contents' });
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ 'list-type': '2', prefix: full });
      if (token) query.set('continuation-token', token);
      // SigV4 wants the query sorted and encoded as RFC 3986 (URLSearchParams writes spaces as '+').
      const sorted = [...query.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      const bucketPath = this.pathStyle ? `${this.endpoint.pathname.replace(/\/$/, '')}/${this.bucket}` : '/';
      const what = `list ${this.display}/${prefix}`;
      const response = await this.connections.send({ method: 'GET', ...this.signed('GET', `${bucketPath}?${sorted}`, EMPTY_SHA256), what });
      if (response.statusCode !== 200) throw statusError(response, what);
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      const result = (parser.parse(Buffer.concat(chunks).toString('utf8')) as { ListBucketResult?: { Contents?: { Key: string; Size: number; LastModified: string }[]; IsTruncated?: boolean | string; NextContinuationToken?: string } }).ListBucketResult;
      if (!result) throw new RemoteError(`${what}: the answer is not a ListBucketResult`, false);
      for (const item of result.Contents ?? []) {
        const key = String(item.Key).slice(full.length - prefix.length);
        yield { key: key as ObjectKey, size: Number(item.Size), mtimeMs: Date.parse(item.LastModified) };
      }
      token = String(result.IsTruncated) === 'true' ? result.NextContinuationToken : undefined;
    } while (token);
  }

  close(): void {
    this.connections.close();
  }
}
