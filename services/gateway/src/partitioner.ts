// kafkajs' DefaultPartitioner with the key hash cached. The default partitioner runs a Long-based
// murmur2 (an object per arithmetic step) and filters the partition list for every message: ~2–3 µs of
// CPU and a few hundred bytes of garbage per event in the gateway's profile, for a key (`<org>/<customer>`)
// that repeats across a customer's events. The partition chosen is exactly the default's —
// toPositive(murmur2(key)) % partition count, the Java client's mapping, so one customer's events keep
// landing on the partition they always did — computed with kafkajs' own murmur2; messages without a key
// or with an explicit partition go to the default partitioner itself.
import { createRequire } from 'node:module';
import { Partitioners, type ICustomPartitioner } from 'kafkajs';

const require = createRequire(import.meta.url);
// kafkajs does not export it; services/gateway/test/partitioner.unit.test.ts pins that this mapping and
// Partitioners.DefaultPartitioner agree, so a kafkajs upgrade that changes either fails there.
const murmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: string | Buffer) => number;

/** Distinct keys remembered; when full the cache starts over (bounded memory, whatever the key count). */
const MAX_CACHED_KEYS = 50_000;

export const CachedDefaultPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  const hashes = new Map<string, number>();
  return (args) => {
    const { message, partitionMetadata } = args;
    const key = message.key;
    if ((message.partition !== null && message.partition !== undefined) || typeof key !== 'string' || partitionMetadata.length === 0) {
      return fallback(args);
    }
    let h = hashes.get(key);
    if (h === undefined) {
      if (hashes.size >= MAX_CACHED_KEYS) hashes.clear();
      h = murmur2(key) & 0x7fffffff;
      hashes.set(key, h);
    }
    return h % partitionMetadata.length;
  };
};
