import { AppError } from '../http/errors.ts';

/** Shape checks every webhook URL must pass: http(s), a host, no credentials. */
export async function checkWebhookUrlBasic(raw: string): Promise<URL> {
  let url: URL;
  try { url = new URL(raw); } catch { throw new AppError('validation_failed', 'body.webhookUrl is not a valid URL'); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AppError('unsafe_webhook_url', 'body.webhookUrl must be an http or https URL');
  }
  // Parsers disagree on these (a backslash is a slash to WHATWG, part of the user info to others).
  if (/[\\\s]/.test(raw)) throw new AppError('unsafe_webhook_url', 'body.webhookUrl must not contain backslashes or whitespace');
  if (url.username || url.password) throw new AppError('unsafe_webhook_url', 'body.webhookUrl must not contain credentials');
  if (!url.hostname) throw new AppError('validation_failed', 'body.webhookUrl has no host');
  return url;
}
