import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** uPlot (npm `uplot`), served by the ops HTTP server itself and inlined into load-test reports: no CDN. */
export interface ChartAssets {
  script: string;
  css: string;
}

/** Reads the chart library from the installed package once per server (or report). */
export async function loadChartAssets(): Promise<ChartAssets> {
  const require = createRequire(import.meta.url);
  const [script, css] = await Promise.all([
    readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  ]);
  return { script, css };
}
