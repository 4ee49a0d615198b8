import { describe, expect, it } from 'vitest';
import { instantOf, isValidTime, isValidTimeZone, localDay, nextDay, nextOccurrence } from '../src/notifications/schedule.ts';

const iso = (d: Date) => d.toISOString();

describe('schedule.ts: local days and wall times from an injected instant (Intl only)', () => {
  it('localDay follows the zone, not UTC', () => {
    expect(localDay(new Date('2026-03-28T22:59:59Z'), 'Europe/Berlin')).toBe('2026-03-28');
    expect(localDay(new Date('2026-03-28T23:00:00Z'), 'Europe/Berlin')).toBe('2026-03-29');
    expect(localDay(new Date('2026-07-01T03:59:59Z'), 'America/New_York')).toBe('2026-06-30');
    expect(localDay(new Date('2026-07-01T04:00:00Z'), 'America/New_York')).toBe('2026-07-01');
    expect(localDay(new Date('2026-07-01T00:00:00Z'), 'UTC')).toBe('2026-07-01');
    expect(localDay(new Date('2026-12-31T18:30:00Z'), 'Asia/Kolkata')).toBe('2027-01-01');
  });

  it('nextDay crosses months, years and leap days', () => {
    expect(nextDay('2026-01-31')).toBe('2026-02-01');
    expect(nextDay('2026-12-31')).toBe('2027-01-01');
    expect(nextDay('2028-02-28')).toBe('2028-02-29');
    expect(nextDay('2026-03-28')).toBe('2026-03-29');
  });

  it('ordinary days: the wall time at the zone offset in force', () => {
    expect(iso(instantOf('2026-01-15', '00:00', 'Europe/Berlin'))).toBe('2026-01-14T23:00:00.000Z');
    expect(iso(instantOf('2026-07-15', '00:00', 'Europe/Berlin'))).toBe('2026-07-14T22:00:00.000Z');
    expect(iso(instantOf('2026-07-15', '09:45', 'America/New_York'))).toBe('2026-07-15T13:45:00.000Z');
    expect(iso(instantOf('2026-07-15', '00:00', 'UTC'))).toBe('2026-07-15T00:00:00.000Z');
    expect(iso(instantOf('2026-07-15', '00:00', 'Asia/Kolkata'))).toBe('2026-07-14T18:30:00.000Z');
  });

  describe('Europe/Berlin spring forward, 2026-03-29 (02:00 CET -> 03:00 CEST)', () => {
    it('midnight is still CET (+01:00)', () => {
      expect(iso(instantOf('2026-03-29', '00:00', 'Europe/Berlin'))).toBe('2026-03-28T23:00:00.000Z');
    });
    it('a nonexistent 02:30 resolves to the first instant after the gap (03:00 CEST)', () => {
      expect(iso(instantOf('2026-03-29', '02:30', 'Europe/Berlin'))).toBe('2026-03-29T01:00:00.000Z');
      expect(iso(instantOf('2026-03-29', '02:00', 'Europe/Berlin'))).toBe('2026-03-29T01:00:00.000Z');
    });
    it('03:00 and later are CEST (+02:00)', () => {
      expect(iso(instantOf('2026-03-29', '03:00', 'Europe/Berlin'))).toBe('2026-03-29T01:00:00.000Z');
      expect(iso(instantOf('2026-03-29', '03:30', 'Europe/Berlin'))).toBe('2026-03-29T01:30:00.000Z');
      expect(iso(instantOf('2026-03-29', '01:59', 'Europe/Berlin'))).toBe('2026-03-29T00:59:00.000Z');
    });
    it('the day has 23 hours: consecutive midnights are 23 h apart', () => {
      const a = instantOf('2026-03-29', '00:00', 'Europe/Berlin').getTime();
      const b = instantOf('2026-03-30', '00:00', 'Europe/Berlin').getTime();
      expect(b - a).toBe(23 * 3600_000);
    });
  });

  describe('Europe/Berlin fall back, 2026-10-25 (03:00 CEST -> 02:00 CET)', () => {
    it('a twice-occurring 02:30 resolves to its first occurrence (CEST)', () => {
      expect(iso(instantOf('2026-10-25', '02:30', 'Europe/Berlin'))).toBe('2026-10-25T00:30:00.000Z');
      expect(iso(instantOf('2026-10-25', '02:00', 'Europe/Berlin'))).toBe('2026-10-25T00:00:00.000Z');
    });
    it('the day has 25 hours and 02:30 happens once in the schedule', () => {
      const a = instantOf('2026-10-25', '00:00', 'Europe/Berlin').getTime();
      const b = instantOf('2026-10-26', '00:00', 'Europe/Berlin').getTime();
      expect(b - a).toBe(25 * 3600_000);
      // After the first 02:30, the next occurrence is the next day's, not the repeated hour.
      const first = instantOf('2026-10-25', '02:30', 'Europe/Berlin');
      expect(iso(nextOccurrence(first, '02:30', 'Europe/Berlin'))).toBe('2026-10-26T01:30:00.000Z');
      expect(iso(nextOccurrence(new Date('2026-10-25T01:00:00Z'), '02:30', 'Europe/Berlin'))).toBe('2026-10-26T01:30:00.000Z');
    });
  });

  describe('America/New_York', () => {
    it('spring forward 2026-03-08: 02:30 does not exist -> 03:00 EDT', () => {
      expect(iso(instantOf('2026-03-08', '02:30', 'America/New_York'))).toBe('2026-03-08T07:00:00.000Z');
      expect(iso(instantOf('2026-03-08', '00:00', 'America/New_York'))).toBe('2026-03-08T05:00:00.000Z');
      expect(iso(instantOf('2026-03-09', '00:00', 'America/New_York'))).toBe('2026-03-09T04:00:00.000Z');
    });
    it('fall back 2026-11-01: 01:30 happens twice -> the first (EDT)', () => {
      expect(iso(instantOf('2026-11-01', '01:30', 'America/New_York'))).toBe('2026-11-01T05:30:00.000Z');
      expect(iso(nextOccurrence(new Date('2026-11-01T05:30:00Z'), '01:30', 'America/New_York'))).toBe('2026-11-02T06:30:00.000Z');
      expect(localDay(new Date('2026-11-01T06:30:00Z'), 'America/New_York')).toBe('2026-11-01');
    });
  });

  it('nextOccurrence is strictly after and walks day by day', () => {
    expect(iso(nextOccurrence(new Date('2026-03-28T22:59:00Z'), '00:00', 'Europe/Berlin'))).toBe('2026-03-28T23:00:00.000Z');
    expect(iso(nextOccurrence(new Date('2026-03-28T23:00:00Z'), '00:00', 'Europe/Berlin'))).toBe('2026-03-29T22:00:00.000Z');
    expect(iso(nextOccurrence(new Date('2026-03-29T00:30:00Z'), '02:30', 'Europe/Berlin'))).toBe('2026-03-29T01:00:00.000Z');
  });

  it('validates zones and times', () => {
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
    expect(isValidTime('00:00')).toBe(true);
    expect(isValidTime('23:59')).toBe(true);
    expect(isValidTime('24:00')).toBe(false);
    expect(isValidTime('7:00')).toBe(false);
  });
});
