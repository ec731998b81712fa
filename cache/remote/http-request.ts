// One HTTP request for the http and s3 backends: keep-alive agents, an inactivity timeout, and the error
// classification retries depend on (network errors, 408, 429 and 5xx are transient; the rest is not).
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createReadStream } from 'node:fs';
import { RemoteError, type PutBody } from './backend.js';

export interface HttpCall {
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  url: URL;
  headers: OutgoingHttpHeaders;
  body?: PutBody;
  /** For messages: what is being asked for, without credentials (e.g. "GET <display>/cas/ab…"). */
  what: string;
}

export class Connections {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(readonly maxSockets: number, readonly timeoutMs: number) {
    this.http = new HttpAgent({ keepAlive: true, maxSockets });
    this.https = new HttpsAgent({ keepAlive: true, maxSockets });
  }

  /** The response with its body unread (the caller reads or discards it). Throws RemoteError. */
  send(call: HttpCall): Promise<IncomingMessage> {
    const secure = call.url.protocol === 'https:';
    const request = secure ? httpsRequest : httpRequest;
    const headers: OutgoingHttpHeaders = { ...call.headers };
    if (call.body) headers['content-length'] = 'bytes' in call.body ? call.body.bytes.length : call.body.size;
    return new Promise((resolve, reject) => {
      const req = request(call.url, { method: call.method, headers, agent: secure ? this.https : this.http }, resolve);
      req.setTimeout(this.timeoutMs, () => req.destroy(new RemoteError(`${call.what}: no response for ${this.timeoutMs} ms`, true)));
      req.on('error', (error) => reject(asRemoteError(error, call.what)));
      if (!call.body) req.end();
      else if ('bytes' in call.body) req.end(call.body.bytes);
      else if (call.body.size === 0) req.end();
      else {
        const start = call.body.offset ?? 0;
        const file = createReadStream(call.body.file, { start, end: start + call.body.size - 1 });
        file.on('error', (error) => req.destroy(error));
        file.pipe(req);
      }
    });
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

export function asRemoteError(error: unknown, what: string): RemoteError {
  if (error instanceof RemoteError) return error;
  const e = error as NodeJS.ErrnoException;
  // Local file errors (the object to send vanished) are not worth a retry; every network error is.
  const local = e.syscall === 'open' || e.syscall === 'read';
  return new RemoteError(`${what}: ${e.code ?? e.message}`, !local);
}

/** A status that is not the expected one, as an error (the body is drained so the connection is reused). */
export function statusError(response: IncomingMessage, what: string): RemoteError {
  response.resume();
  const status = response.statusCode ?? 0;
  return new RemoteError(`${what}: HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`, status >= 500 || status === 408 || status === 429);
}

/** Reads the rest of a response and throws it away (keeps the keep-alive connection usable). */
export function discard(response: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    response.on('end', resolve).on('error', () => resolve()).on('close', () => resolve());
    response.resume();
  });
}
