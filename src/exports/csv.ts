/**
 * RFC 4180 CSV writing: fields are quoted when they hold a comma, a quote, CR or LF (quotes are
 * doubled inside), lines end with CRLF. Text cells that a spreadsheet would run as a formula
 * (starting with =, +, -, @, tab or CR) are prefixed with a single quote, the OWASP
 * "CSV injection" defence; numbers and booleans are written as such and never altered.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell: null/undefined → empty, Date → ISO-8601, object → JSON text, string → neutralised text. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = FORMULA_START.test(value) ? `'${value}` : value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') text = String(value);
  else if (value instanceof Date) text = value.toISOString();
  else {
    const json = JSON.stringify(value);
    text = FORMULA_START.test(json) ? `'${json}` : json;
  }
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated. */
export function csvLine(values: readonly unknown[]): string {
  return values.map(csvCell).join(',') + '\r\n';
}
