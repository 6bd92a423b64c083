// CRC-64-AVRO ("Rabin") fingerprint from the Avro specification, section "Schema Fingerprints".
// avsc ships MD5/SHA-256 fingerprints only; single-object encoding needs this 64-bit one.

const EMPTY = 0xc15d213aa4d7a795n;
const MASK64 = 0xffffffffffffffffn;

const TABLE: bigint[] = (() => {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK64);
    table.push(fp);
  }
  return table;
})();

/** Fingerprint of the given bytes (normally the UTF-8 Parsing Canonical Form of a schema). */
export function rabinFingerprint64(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

/** The fingerprint as the 8 little-endian bytes used by single-object encoding. */
export function fingerprintBytesLE(fp: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(fp);
  return buf;
}
