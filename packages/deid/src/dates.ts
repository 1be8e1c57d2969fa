const DAY_MS = 86_400_000;

/** Shifts a DA value (YYYYMMDD) back by `days`; anything else becomes empty (cannot be shifted safely). */
export function shiftDa(value: string, days: number): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  if (m === null) return '';
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) - days * DAY_MS;
  if (!Number.isFinite(t)) return '';
  return new Date(t).toISOString().slice(0, 10).replaceAll('-', '');
}

/** Shifts the date part of a DT value (YYYYMMDD[HHMMSS[.F]][&ZZXX]); a DT with only a year or month is emptied. */
export function shiftDt(value: string, days: number): string {
  const trimmed = value.trim();
  if (trimmed.length < 8) return '';
  const date = shiftDa(trimmed.slice(0, 8), days);
  return date === '' ? '' : date + trimmed.slice(8);
}
