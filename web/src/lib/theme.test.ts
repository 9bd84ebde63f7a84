import { describe, expect, it } from 'vitest';
import { nextTheme, parseChoice, resolveTheme } from './theme.ts';

describe('theme choice', () => {
  it('follows the system unless light or dark was chosen', () => {
    expect(resolveTheme('system', true)).toBe('light');
    expect(resolveTheme('system', false)).toBe('dark');
    expect(resolveTheme('dark', true)).toBe('dark');
    expect(resolveTheme('light', false)).toBe('light');
  });
  it('the toggle cycles system → light → dark → system; anything stored but those is "system"', () => {
    expect([nextTheme('system'), nextTheme('light'), nextTheme('dark')]).toEqual(['light', 'dark', 'system']);
    expect(parseChoice('light')).toBe('light');
    expect(parseChoice(null)).toBe('system');
    expect(parseChoice('purple')).toBe('system');
  });
});
