import { truthOf, type EvalMetrics, type RunRecord } from './evaluate.js';
import { matchEvents, type Interval } from './metrics.js';

/**
 * The evaluation as pictures for the model card: the event F1 of every group with its 95 %
 * interval against the targets, and the per-frame probabilities of the runs the detector got
 * wrong, beside the true inflations. Plain SVG, no dependency.
 */

/** One row of the group chart: a group's F1 and its interval (null where the group has no inflation). */
export interface GroupRow {
  group: string;
  key: string;
  events: number;
  /** False events in the group's runs: all a group without inflations can show. */
  falseEvents: number;
  f1: number | null;
  interval: [number, number] | null;
}

/** A run the detector got wrong, with what it saw. */
export interface RunTrace {
  /** The run's name and what went wrong: the caption's first line. */
  name: string;
  /** What the run is (size, bits, encoding, confounders): the caption's second line. */
  caption: string;
  inflated: readonly number[];
  truth: readonly Interval[];
  /** The events reported, and whether each matched a true one. */
  reported: readonly (Interval & { matched: boolean })[];
}

export interface ChartTargets {
  /** Event F1 every group should reach. */
  f1: number;
  /** ...and the F1 of each confounder group. */
  confounderF1: number;
}

const ROW = 18;
const LABEL = 300;
const PLOT = 420;
const MISSED = '#d62728';
const FOUND = '#2ca02c';

/** Dot and whisker per group: F1 with its interval, one band per breakdown, target lines across. */
export function groupF1Svg(rows: readonly GroupRow[], targets: ChartTargets, title: string): string {
  const top = 40;
  const groups = [...new Set(rows.map((r) => r.group))];
  const height = top + (rows.length + groups.length) * ROW + 40;
  const width = LABEL + PLOT + 30;
  const x = (v: number): number => LABEL + v * PLOT;
  const out = [svgOpen(width, height), text(width / 2, 22, title, 'middle', 15)];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${n(x(t))}" y1="${top}" x2="${n(x(t))}" y2="${height - 30}" stroke="#eee"/>`, text(x(t), height - 14, String(t), 'middle'));
  }
  let y = top;
  for (const group of groups) {
    y += ROW;
    out.push(text(8, y - 4, `By ${group}`, 'start', 12, 'bold'));
    const target = group === 'confounder' ? targets.confounderF1 : targets.f1;
    const first = y;
    for (const row of rows.filter((r) => r.group === group)) {
      const mid = y + ROW / 2;
      out.push(text(LABEL - 8, mid + 4, `${row.key} (${row.events} inflations)`, 'end'));
      if (row.f1 === null) {
        const clean = row.falseEvents === 0;
        out.push(text(x(0) + 4, mid + 4, `no inflation, ${clean ? 'no false event' : `${row.falseEvents} false event${row.falseEvents === 1 ? '' : 's'}`}`, 'start', 11, clean ? 'normal' : 'bold', clean ? '#999' : MISSED));
      } else {
        const color = row.f1 >= target ? FOUND : MISSED;
        if (row.interval !== null) out.push(`<line x1="${n(x(row.interval[0]))}" y1="${n(mid)}" x2="${n(x(row.interval[1]))}" y2="${n(mid)}" stroke="${color}" stroke-width="2"/>`);
        out.push(`<circle cx="${n(x(row.f1))}" cy="${n(mid)}" r="4" fill="${color}"/>`);
      }
      y += ROW;
    }
    out.push(`<line x1="${n(x(target))}" y1="${first}" x2="${n(x(target))}" y2="${y}" stroke="#333" stroke-dasharray="4 3"/>`);
  }
  out.push(text(width / 2, height - 2, `dot: event F1; line: its 95 % interval over runs; dashed: the target, ${targets.f1} (confounders ${targets.confounderF1})`, 'middle', 11));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

const PANEL_W = 400;
const PANEL_H = 140;
const COLUMNS = 2;

/**
 * Small multiples, one panel per run: the inflated probability per frame (line), the true
 * inflations (shaded), the reported events (bars above: green matched, red false), and the
 * event rule's two thresholds (dashed).
 */
export function tracesSvg(traces: readonly RunTrace[], thresholds: readonly number[], title: string): string {
  const rows = Math.max(1, Math.ceil(traces.length / COLUMNS));
  const width = COLUMNS * PANEL_W + 20;
  const height = 70 + rows * (PANEL_H + 40);
  const out = [svgOpen(width, height), text(width / 2, 22, title, 'middle', 15)];
  out.push(text(width / 2, 40, 'line: inflated probability per frame; shaded: true inflations', 'middle', 11));
  out.push(text(width / 2, 54, 'bars: reported events (green matched, red false); dashed: the event rule\'s thresholds', 'middle', 11));
  traces.forEach((trace, i) => out.push(panel(trace, thresholds, 10 + (i % COLUMNS) * PANEL_W, 70 + Math.floor(i / COLUMNS) * (PANEL_H + 40))));
  if (traces.length === 0) out.push(text(width / 2, 90, 'every run right', 'middle'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function panel(trace: RunTrace, thresholds: readonly number[], left: number, top: number): string {
  const w = PANEL_W - 40;
  const h = PANEL_H - 30;
  const frames = Math.max(1, trace.inflated.length - 1);
  const x = (f: number): number => left + 30 + (f / frames) * w;
  const y = (p: number): number => top + 20 + (1 - p) * h;
  const out = [text(left + 30, top - 2, trace.name, 'start', 11, 'bold'), text(left + 30, top + 11, trace.caption, 'start', 10)];
  out.push(`<rect x="${left + 30}" y="${top + 20}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (const t of trace.truth) out.push(`<rect x="${n(x(t.startFrame))}" y="${top + 20}" width="${n(Math.max(1, x(t.endFrame) - x(t.startFrame)))}" height="${h}" fill="${FOUND}" fill-opacity="0.18"/>`);
  for (const p of thresholds) out.push(`<line x1="${left + 30}" y1="${n(y(p))}" x2="${left + 30 + w}" y2="${n(y(p))}" stroke="#999" stroke-dasharray="3 3"/>`);
  for (const r of trace.reported) out.push(`<rect x="${n(x(r.startFrame))}" y="${top + 14}" width="${n(Math.max(2, x(r.endFrame) - x(r.startFrame)))}" height="5" fill="${r.matched ? FOUND : MISSED}"/>`);
  const d = trace.inflated.map((p, f) => `${f === 0 ? 'M' : 'L'}${n(x(f))},${n(y(p))}`).join('');
  out.push(`<path d="${d}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`);
  out.push(text(left + 26, top + 24, '1', 'end', 10), text(left + 26, top + 20 + h, '0', 'end', 10), text(left + 30 + w, top + 34 + h, `${trace.inflated.length} frames`, 'end', 10));
  return out.join('\n');
}

function svgOpen(width: number, height: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">\n<rect width="${width}" height="${height}" fill="white"/>`;
}

function text(x: number, y: number, s: string, anchor: 'start' | 'middle' | 'end', size = 12, weight = 'normal', fill = '#000'): string {
  return `<text x="${n(x)}" y="${n(y)}" text-anchor="${anchor}" font-size="${size}" font-weight="${weight}" fill="${fill}">${xmlText(s)}</text>`;
}

const n = (v: number): string => v.toFixed(1);

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The group chart's rows from the metrics, in the tables' order. */
export function groupRows(metrics: EvalMetrics): GroupRow[] {
  return Object.entries(metrics.groups).flatMap(([group, byKey]) => Object.entries(byKey).map(([key, g]) => ({ group, key, events: g.events, falseEvents: g.falseEvents, f1: g.f1, interval: g.f1Interval })));
}

/** A panel for each run with a missed or a false event. */
export function tracesOf(records: readonly RunRecord[]): RunTrace[] {
  return records.flatMap((r) => {
    if (r.inflated === undefined) return [];
    const truth = truthOf(r.meta);
    const matched = new Set(matchEvents(truth, r.events).map(([, p]) => p));
    const m = r.meta;
    const confounders = m.tags.filter((t) => t !== 'inflation').join('+') || 'no confounder';
    return [{
      name: `${r.name}: missed ${r.score.falseNegatives}, false ${r.score.falsePositives}`,
      caption: `${m.size} px, ${m.bits}-bit, ${m.fps} fps, ${m.encoding} ${m.photometric}, ${confounders}`,
      inflated: r.inflated,
      truth,
      reported: r.events.map((e, i) => ({ startFrame: e.startFrame, endFrame: e.endFrame, matched: matched.has(i) })),
    }];
  });
}
