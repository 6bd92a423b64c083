// Request bodies of every ingest route, one path: optional Content-Encoding (gzip, deflate, br) is
// decoded as a stream with the DECODED size limited to the body limit (413 as soon as it is passed:
// the inflater is destroyed, no zip bomb is expanded further), the result must be valid UTF-8 (400
// otherwise, never silently replaced by U+FFFD) and is parsed as JSON whatever the Content-Type says
// (Segment's SDKs send gzip with application/x-www-form-urlencoded, webhooks text/plain, ...).
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';

export class BodyError extends Error {
  constructor(
    readonly statusCode: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

export const SUPPORTED_ENCODINGS = ['gzip', 'x-gzip', 'deflate', 'br', 'identity'] as const;

/** The single content coding of a request, 'identity' when none, or null when unsupported. */
export function contentEncodingOf(header: string | string[] | undefined): 'gzip' | 'deflate' | 'br' | 'identity' | null {
  if (header === undefined) return 'identity';
  const value = (Array.isArray(header) ? header.join(',') : header).trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  if (value === 'br') return 'br';
  return null; // unknown or stacked codings ("gzip, br")
}

/** zlib-wrapped deflate (RFC 1950, what HTTP "deflate" means) vs raw deflate (what some clients send). */
function isZlibHeader(b: Buffer): boolean {
  return b.length >= 2 && (b[0]! & 0x0f) === 8 && b[0]! >> 4 <= 7 && ((b[0]! << 8) | b[1]!) % 31 === 0;
}

export type DecodedStream = PassThrough & { receivedEncodedLength: number };

/**
 * A stream of the decoded body. `receivedEncodedLength` counts the bytes received (Fastify compares
 * it with Content-Length). Errors are BodyError: 413 when more than `limit` bytes are received or
 * decoded, 400 for a corrupt encoding.
 */
export function decodeBody(raw: IncomingMessage | Readable, encoding: 'gzip' | 'deflate' | 'br', limit: number): DecodedStream {
  const out = new PassThrough() as unknown as DecodedStream;
  out.receivedEncodedLength = 0;
  let inflater: zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress | null = null;
  let decoded = 0;
  let failed = false;

  const fail = (err: BodyError) => {
    if (failed) return;
    failed = true;
    raw.removeListener('data', onRaw);
    raw.removeListener('end', onRawEnd);
    inflater?.destroy();
    raw.resume(); // discard whatever else arrives (bounded by the server's request timeout)
    out.destroy(err);
  };
  const tooLarge = () => new BodyError(413, 'body_too_large', `request body exceeds ${limit} bytes (after decoding ${encoding})`);

  const makeInflater = (first: Buffer) => {
    const opts = { chunkSize: 16 * 1024 };
    const z =
      encoding === 'gzip'
        ? zlib.createGunzip(opts)
        : encoding === 'br'
          ? zlib.createBrotliDecompress(opts)
          : isZlibHeader(first)
            ? zlib.createInflate(opts)
            : zlib.createInflateRaw(opts);
    z.on('data', (chunk: Buffer) => {
      if (failed) return;
      decoded += chunk.length;
      if (decoded > limit) return fail(tooLarge());
      out.write(chunk);
    });
    z.on('end', () => {
      if (!failed) out.end();
    });
    z.on('error', (err: Error) => fail(new BodyError(400, 'invalid_encoding', `the body is not valid ${encoding}: ${err.message}`)));
    return z;
  };

  function onRaw(chunk: Buffer) {
    if (failed) return;
    out.receivedEncodedLength += chunk.length;
    if (out.receivedEncodedLength > limit) return fail(tooLarge());
    inflater ??= makeInflater(chunk);
    inflater.write(chunk);
  }
  function onRawEnd() {
    if (failed) return;
    if (!inflater) return fail(new BodyError(400, 'invalid_encoding', `the body is empty but declared ${encoding}`));
    inflater.end();
  }
  raw.on('data', onRaw);
  raw.on('end', onRawEnd);
  raw.on('error', (err: Error) => fail(new BodyError(400, 'invalid_request', err.message)));
  return out;
}

/** The body as text, refusing invalid UTF-8 (400) instead of decoding it with replacement characters. */
export function utf8Text(body: Buffer): string {
  if (!isUtf8(body)) throw new BodyError(400, 'invalid_utf8', 'the body is not valid UTF-8');
  // A UTF-8 byte order mark is tolerated (some HTTP clients add one).
  const start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  return body.toString('utf8', start);
}
