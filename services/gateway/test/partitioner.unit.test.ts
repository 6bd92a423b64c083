// The cached partitioner picks exactly the partition kafkajs' DefaultPartitioner picks (so one customer's
// events stay on the partition they always used), for string keys, repeats, and the cases it delegates.
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CachedDefaultPartitioner } from '../src/partitioner.ts';

const partitions = (n: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({
    partitionId: i,
    leader: leaderless.includes(i) ? -1 : 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));

describe('CachedDefaultPartitioner', () => {
  it('agrees with DefaultPartitioner for 5,000 keys (ASCII, Unicode, long), each asked twice, over 1..12 partitions', () => {
    const cached = CachedDefaultPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    const keys = Array.from({ length: 5_000 }, (_, i) =>
      i % 3 === 0 ? `org_${i % 17}/cust_${i}` : i % 3 === 1 ? `org/клиент-${i}-😀` : `org/${'x'.repeat(i % 300)}${i}`,
    );
    for (const n of [1, 2, 3, 6, 7, 12]) {
      const partitionMetadata = partitions(n, n > 2 ? [1] : []); // a leaderless partition changes nothing for keyed messages
      for (const key of [...keys, ...keys]) {
        const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } };
        expect(cached(args)).toBe(reference(args));
      }
    }
  });

  it('an explicit partition wins; keyless messages go round-robin over available partitions like the default', () => {
    const cached = CachedDefaultPartitioner();
    const partitionMetadata = partitions(6, [2]);
    expect(cached({ topic: 't', partitionMetadata, message: { key: 'k', value: 'v', partition: 4 } })).toBe(4);
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(cached({ topic: 't', partitionMetadata, message: { value: 'v' } }));
    expect([...seen].sort()).toEqual([0, 1, 3, 4, 5]);
  });
});
