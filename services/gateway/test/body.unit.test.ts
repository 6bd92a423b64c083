import { Readable } from 'node:stream';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { postgresFailureKind } from '@meterline/core';
import { BodyError, contentEncodingOf, decodeBody, utf8Text } from '../src/body.ts';
import { mapSegmentMessage } from '../src/segment.ts';

function collect(s: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}
const source = (b: Buffer, chunk = 4096) =>
  Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk);
    })(),
  );

describe('body decoding', () => {
  it('parses Content-Encoding', () => {
    expect(contentEncodingOf(undefined)).toBe('identity');
    expect(contentEncodingOf(' GZIP ')).toBe('gzip');
    expect(contentEncodingOf('x-gzip')).toBe('gzip');
    expect(contentEncodingOf('deflate')).toBe('deflate');
    expect(contentEncodingOf('br')).toBe('br');
    expect(contentEncodingOf('identity')).toBe('identity');
    expect(contentEncodingOf('gzip, br')).toBeNull();
    expect(contentEncodingOf('compress')).toBeNull();
  });

  it('decodes gzip and brotli and counts the received bytes', async () => {
    const text = Buffer.from(JSON.stringify({ batch: [{ a: 'é'.repeat(5000) }] }));
    const gz = gzipSync(text);
    const s = decodeBody(source(gz), 'gzip', 1 << 20);
    expect((await collect(s)).equals(text)).toBe(true);
    expect(s.receivedEncodedLength).toBe(gz.length);
    expect((await collect(decodeBody(source(brotliCompressSync(text)), 'br', 1 << 20))).equals(text)).toBe(true);
  });

  it('stops at the decoded limit with 413, and a corrupt stream is 400', async () => {
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));
    const err = await collect(decodeBody(source(bomb), 'gzip', 1024 * 1024)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BodyError);
    expect((err as BodyError).statusCode).toBe(413);
    const exact = Buffer.alloc(1000, 0x20);
    expect((await collect(decodeBody(source(gzipSync(exact)), 'gzip', 1000))).length).toBe(1000);
    const over = await collect(decodeBody(source(gzipSync(Buffer.alloc(1001, 0x20))), 'gzip', 1000)).then(
      () => null,
      (e: BodyError) => e.statusCode,
    );
    expect(over).toBe(413);
    const corrupt = await collect(decodeBody(source(Buffer.from('not gzip at all')), 'gzip', 1000)).then(
      () => null,
      (e: BodyError) => e.errorCode,
    );
    expect(corrupt).toBe('invalid_encoding');
  });

  it('requires UTF-8', () => {
    expect(utf8Text(Buffer.from('{"a":"Zoë"}'))).toBe('{"a":"Zoë"}');
    expect(utf8Text(Buffer.from('\ufeff{}'))).toBe('{}');
    expect(() => utf8Text(Buffer.from('{"a":"Zoë"}', 'latin1'))).toThrow(BodyError);
    expect(() => utf8Text(Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]))).toThrow(/UTF-8/); // encoded surrogate
  });
});

describe('identify traits', () => {
  const rules = { maxFutureMs: 86_400_000, backfillWindowMs: 86_400_000 };
  it('rejects a NUL in traits.name or a control character in traits.email, naming the trait', () => {
    const m = mapSegmentMessage({ type: 'identify', userId: 'u', traits: { name: 'a\u0000b' } }, Date.now(), rules);
    expect(m).toMatchObject({ kind: 'rejected', errors: [{ field: 'traits.name', reason: 'invalid_characters' }] });
    const e = mapSegmentMessage({ type: 'identify', userId: 'u', traits: { email: 'x\n@y' } }, Date.now(), rules);
    expect(e).toMatchObject({ kind: 'rejected', errors: [{ field: 'traits.email', reason: 'invalid_characters' }] });
    const s = mapSegmentMessage({ type: 'identify', userId: 'u', traits: { firstName: '\ud800' } }, Date.now(), rules);
    expect(s).toMatchObject({ kind: 'rejected', errors: [{ field: 'traits.firstName', reason: 'invalid_unicode' }] });
  });

  it('keeps tabs/newlines in names and never cuts a surrogate pair when truncating to 255', () => {
    const ok = mapSegmentMessage({ type: 'identify', userId: 'u', traits: { name: 'Ada\tLovelace' } }, Date.now(), rules);
    expect(ok).toMatchObject({ kind: 'identify', customer: { name: 'Ada\tLovelace' } });
    const long = mapSegmentMessage({ type: 'identify', userId: 'u', traits: { name: 'a'.repeat(254) + '😀' } }, Date.now(), rules);
    expect(long.kind).toBe('identify');
    const name = (long as { customer: { name: string } }).customer.name;
    expect(name).toBe('a'.repeat(254));
    expect(name.isWellFormed()).toBe(true);
  });
});

describe('postgresFailureKind', () => {
  it('data errors are 4xx, connection trouble 503, other SQLSTATEs internal', () => {
    expect(postgresFailureKind({ code: '22021', severity: 'ERROR' })).toBe('data');
    expect(postgresFailureKind({ code: '23505', severity: 'ERROR' })).toBe('data');
    expect(postgresFailureKind({ code: '57P01', severity: 'FATAL' })).toBe('unavailable');
    expect(postgresFailureKind({ code: '08006', severity: 'FATAL' })).toBe('unavailable');
    expect(postgresFailureKind({ code: '42P01', severity: 'ERROR' })).toBe('internal');
    expect(postgresFailureKind(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBe('unavailable');
    expect(postgresFailureKind(new Error('Connection terminated due to connection timeout'))).toBe('unavailable');
  });
});
