/**
 * The image type a file's first bytes say it is (JPEG, PNG, GIF, WebP), or null. An upload whose
 * bytes are not the type it declares is refused, so nothing else is ever served back as an image.
 */
export function sniffImageType(data: Buffer): string | null {
  const starts = (hex: string, at = 0) => data.length >= at + hex.length / 2 && data.subarray(at, at + hex.length / 2).equals(Buffer.from(hex, 'hex'));
  if (starts('ffd8ff')) return 'image/jpeg';
  if (starts('89504e470d0a1a0a')) return 'image/png';
  if (starts('474946383761') || starts('474946383961')) return 'image/gif'; // GIF87a, GIF89a
  if (starts('52494646') && starts('57454250', 8)) return 'image/webp'; // RIFF....WEBP
  return null;
}
