import { describe, expect, it } from 'vitest';
import { AUDIT_DETAIL_MAX, namesInWords } from './audit.ts';

describe('namesInWords', () => {
  it('lists names sorted, and sums up the rest of a long list within the limit', () => {
    expect(namesInWords(['web-2', 'db', 'web-1'])).toBe('db, web-1, web-2');
    expect(namesInWords([])).toBe('no hosts');
    const many = Array.from({ length: 1000 }, (_, i) => `host-${String(i).padStart(4, '0')}`);
    const words = namesInWords(many);
    expect(words.length).toBeLessThanOrEqual(AUDIT_DETAIL_MAX);
    expect(words).toMatch(/^host-0000, host-0001, .* and \d+ more$/);
    const shown = words.split(' and ')[0].split(', ').length;
    expect(words).toContain(`and ${1000 - shown} more`);
  });
});
