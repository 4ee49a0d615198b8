/** Longest excerpt kept of a failed response (characters, after scrubbing). */
export const EXCERPT_MAX = 160;
/** Bytes of a response body read for an excerpt; the rest is drained unread. */
export const EXCERPT_READ_BYTES = 2048;

/**
 * A short excerpt of an endpoint's error response, for delivery health. The receiver controls
 * the body, so anything that may identify a person is replaced before it is stored: e-mail
 * addresses, IP addresses, UUIDs, URLs, runs of 4+ digits (phones, cards, account numbers) and
 * words with an @ or a digit in them. Markup is stripped; whitespace collapsed; at most
 * EXCERPT_MAX characters are kept.
 */
export function scrubExcerpt(raw: string): string | null {
  let s = raw.replace(/<[^>]{0,200}>/g, ' ');
  s = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  s = s.replace(/\b[\w.+-]+@[\w-]+(\.[\w-]+)*/g, '[email]');
  s = s.replace(/\bhttps?:\/\/\S+/gi, '[url]');
  s = s.replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '[id]');
  s = s.replace(/\b\d{1,3}(\.\d{1,3}){3}\b/g, '[ip]');
  s = s.replace(/\b[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}\b/gi, (m) => (/[0-9a-f]/i.test(m) && m.split(':').length > 2 ? '[ip]' : m));
  s = s.replace(/\+?\d[\d ().-]{3,}\d/g, (m) => (m.replace(/\D/g, '').length >= 4 ? '[number]' : m));
  s = s.replace(/\s+/g, ' ').trim();
  if (!s) return null;
  return s.length > EXCERPT_MAX ? `${s.slice(0, EXCERPT_MAX - 1)}…` : s;
}
