import { ArteriaError } from '@arteria/protocol';
/** A dependency-free SVG line chart: enough for capacity plans and simulated days. */
export interface ChartSeries {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Dashed line (reference curves such as 1:1). */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  width?: number;
  height?: number;
  /** Tick labels formatter for x (for example hours). */
  xTick?: (x: number) => string;
}

const COLORS = ['#7f7f7f', '#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd'];

export function lineChartSvg(series: readonly ChartSeries[], o: ChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 460;
  const m = { left: 70, right: 180, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0) && (!o.yLog || y > 0));
  if (all.length === 0) throw new ArteriaError('CONFIG_INVALID', 'chart has no finite points');
  const fx = o.xLog ? Math.log10 : (v: number): number => v;
  const fy = o.yLog ? Math.log10 : (v: number): number => v;
  let [x0, x1] = extent(all.map(([x]) => fx(x)));
  let [y0, y1] = extent(all.map(([, y]) => fy(y)));
  if (o.xLog) [x0, x1] = [Math.floor(x0), Math.ceil(x1)];
  if (o.yLog) [y0, y1] = [Math.floor(y0), Math.ceil(y1)];
  else y0 = Math.min(0, y0);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number): number => m.left + ((fx(x) - x0) / (x1 - x0)) * (width - m.left - m.right);
  const py = (y: number): number => height - m.bottom - ((fy(y) - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2 - m.right / 2}" y="22" text-anchor="middle" font-size="15">${escape(o.title)}</text>`);
  for (const t of ticks(x0, x1, o.xLog ?? false)) {
    const x = px(o.xLog ? 10 ** t : t);
    out.push(`<line x1="${f(x)}" y1="${m.top}" x2="${f(x)}" y2="${height - m.bottom}" stroke="#eee"/>`);
    const label = o.xTick ? o.xTick(o.xLog ? 10 ** t : t) : fmt(o.xLog ? 10 ** t : t);
    out.push(`<text x="${f(x)}" y="${height - m.bottom + 16}" text-anchor="middle">${escape(label)}</text>`);
  }
  for (const t of ticks(y0, y1, o.yLog ?? false)) {
    const y = py(o.yLog ? 10 ** t : t);
    out.push(`<line x1="${m.left}" y1="${f(y)}" x2="${width - m.right}" y2="${f(y)}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${f(y + 4)}" text-anchor="end">${fmt(o.yLog ? 10 ** t : t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(m.left + width - m.right) / 2}" y="${height - 12}" text-anchor="middle">${escape(o.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] ?? '#000';
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.xLog || x > 0) && (!o.yLog || y > 0));
    const d = pts.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${f(px(x))},${f(py(y))}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    const ly = m.top + 10 + i * 20;
    out.push(`<line x1="${width - m.right + 12}" y1="${ly}" x2="${width - m.right + 36}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${width - m.right + 42}" y="${ly + 4}">${escape(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function extent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let t = Math.ceil(lo); t <= hi; t += 1) out.push(t);
    return out;
  }
  const raw = (hi - lo) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(t);
  return out;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return String(Math.round(v * 100) / 100);
}

function f(v: number): string {
  return v.toFixed(1);
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
