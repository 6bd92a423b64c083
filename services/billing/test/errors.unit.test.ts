// Which unexpected errors are a dependency being down (503 dependency_unavailable) and which are bugs (500).
import { describe, expect, it } from 'vitest';
import { dependencyFailure } from '../src/http/errors.ts';

describe('dependencyFailure', () => {
  it('names the dependency from the error shapes the clients produce', () => {
    expect(dependencyFailure(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe('redis');
    expect(dependencyFailure(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe('redis');
    expect(dependencyFailure(Object.assign(new Error('broker down'), { name: 'KafkaJSNumberOfRetriesAttempted' }))).toBe('kafka');
    expect(dependencyFailure(Object.assign(new Error('terminating'), { severity: 'FATAL', code: '57P01' }))).toBe('postgres');
    expect(dependencyFailure(new Error('timeout exceeded when trying to connect'))).toBe('postgres');
    expect(dependencyFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('a backing service');
    expect(dependencyFailure(new Error('wrapped', { cause: Object.assign(new Error('x'), { name: 'KafkaJSConnectionError' }) }))).toBe(
      'kafka',
    );
  });
  it('leaves bugs and data errors alone', () => {
    expect(dependencyFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBeNull();
    expect(dependencyFailure(Object.assign(new Error('dup'), { severity: 'ERROR', code: '23505' }))).toBeNull();
    expect(dependencyFailure(null)).toBeNull();
    expect(dependencyFailure('boom')).toBeNull();
  });
});
