// exports/csv.ts: RFC 4180 quoting, and formula injection neutralized without touching numbers.
import { describe, expect, it } from 'vitest';
import { csvField, csvRow } from '../src/exports/csv.ts';

describe('csvField', () => {
  it('quotes commas, quotes, line breaks and edge spaces (quotes doubled)', () => {
    expect(csvField('Acme, "Intl" Ltd')).toBe('"Acme, ""Intl"" Ltd"');
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csvField(' x')).toBe('" x"');
    expect(csvField(null)).toBe('');
    expect(csvRow(['a', 1, 2n, true, undefined])).toBe('a,1,2,true,\r\n');
  });

  it('a text cell that a spreadsheet would run as a formula gets a leading apostrophe', () => {
    expect(csvField('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('+cmd')).toBe("'+cmd");
    expect(csvField('-2+3')).toBe("'-2+3");
    expect(csvField('\tx')).toBe("'\tx");
  });

  it('numbers are never altered: negative and signed decimal strings stay as they are', () => {
    expect(csvField('-1.00')).toBe('-1.00');
    expect(csvField('+2')).toBe('+2');
    expect(csvField('-0.000000000207')).toBe('-0.000000000207');
    expect(csvField(-5)).toBe('-5');
    expect(csvField('plain')).toBe('plain');
  });
});
