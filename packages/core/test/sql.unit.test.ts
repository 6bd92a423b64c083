import { describe, expect, it } from 'vitest';
import { sqlIdentifier, sqlNumber, sqlString, sqlStringArray, toClickHouseDateTime, splitStatements } from '../src/index.ts';

describe('ClickHouse literal escaping', () => {
  it('escapes quotes, backslashes and control characters', () => {
    expect(sqlString("it's")).toBe("'it\\'s'");
    expect(sqlString('a\\b')).toBe("'a\\\\b'");
    expect(sqlString("x'; DROP TABLE events; --")).toBe("'x\\'; DROP TABLE events; --'");
    expect(sqlString('line\nbreak\ttab\0')).toBe("'line\\nbreak\\ttab\\0'");
    expect(sqlStringArray(['a', "b'"])).toBe("['a','b\\'']");
  });

  it('accepts only finite numbers and plain identifiers', () => {
    expect(sqlNumber(1.5)).toBe('1.5');
    expect(() => sqlNumber(Number.NaN)).toThrow();
    expect(() => sqlNumber('1; DROP' as unknown as number)).toThrow();
    expect(sqlIdentifier('meterline_test')).toBe('meterline_test');
    expect(() => sqlIdentifier('x; DROP')).toThrow();
    expect(() => sqlIdentifier('1abc')).toThrow();
  });

  it('formats DateTime in UTC with seconds precision', () => {
    expect(toClickHouseDateTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02 03:04:05');
  });

  it('splits migration files into statements', () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nCREATE TABLE b (y String) ENGINE = Memory;\n')).toEqual([
      'CREATE TABLE a (x UInt8) ENGINE = Memory',
      'CREATE TABLE b (y String) ENGINE = Memory',
    ]);
  });
});
