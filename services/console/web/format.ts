// Display helpers. Money arrives as decimal strings and is shown as such (never parsed into a float).
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export const day = (iso: string | null | undefined) => (iso ? iso.slice(0, 10) : '—');

export function money(amount: string | null | undefined, currency?: string): string {
  if (amount === null || amount === undefined) return '—';
  return currency ? `${amount} ${currency}` : amount;
}

/** Usage quantities are plain numbers on the wire; shown with thousands separators, exactly as sent. */
export function qty(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: 12 });
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
