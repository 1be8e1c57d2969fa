/**
 * `arteria algorithm eval`: runs a labelled data set (eval/dataset.json) through the
 * platform's runner and averages the numbers the package's own scorer (eval/score.js)
 * gives each output against its label. The scorer is the author's code and runs in this
 * process, not in the sandbox: it is evaluation tooling, never shipped to the platform.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ArteriaError, toArteriaError } from '@arteria/protocol';
import { AlgorithmRegistry, AlgorithmRunner, onnxRuntimeModuleUrl, type RegisteredAlgorithm } from '@arteria/worker';
import { EVAL_FILE, EVAL_SCORER, EvalSet, describeInput, inputBytes, readJsonFile } from './cases.js';

export type Scorer = (output: unknown, label: unknown) => Record<string, number>;

export interface EvalOptions {
  inferenceModule?: string;
  signal?: AbortSignal;
}

export interface EvalReport {
  algorithm: string;
  digest: string;
  items: number;
  /** Items the algorithm failed on, with the error. */
  failures: { name: string; error: string }[];
  /** Mean of each metric over the items that produced an output. */
  metrics: Record<string, number>;
}

async function loadScorer(file: string): Promise<Scorer> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} cannot be imported: ${(err as Error).message}`, { cause: err });
  }
  if (typeof module.default !== 'function') throw new ArteriaError('CONFIG_INVALID', `${file} has no default export function score(output, label)`);
  return module.default as Scorer;
}

export async function evaluateAlgorithm(dirArg: string, options: EvalOptions = {}): Promise<EvalReport> {
  const dir = path.resolve(dirArg);
  const algorithm = (await AlgorithmRegistry.load([dir])).list()[0] as RegisteredAlgorithm;
  const set = await readJsonFile(path.join(dir, EVAL_FILE), EvalSet);
  const score = await loadScorer(path.join(dir, EVAL_SCORER));
  const sums = new Map<string, { sum: number; n: number }>();
  const failures: EvalReport['failures'] = [];
  const runner = new AlgorithmRunner({ inferenceModule: options.inferenceModule ?? onnxRuntimeModuleUrl() });
  try {
    for (const [i, item] of set.items.entries()) {
      const name = item.name ?? `#${i} ${describeInput(item.input)}`;
      let output: unknown;
      try {
        output = (await runner.run(algorithm, await inputBytes(dir, item.input), options.signal ? { signal: options.signal } : {})).output;
      } catch (err) {
        if (options.signal?.aborted) throw err;
        const e = toArteriaError(err);
        failures.push({ name, error: `${e.code}: ${e.message}` });
        continue;
      }
      for (const [metric, value] of Object.entries(score(output, item.label))) {
        if (typeof value !== 'number' || !Number.isFinite(value)) throw new ArteriaError('CONFIG_INVALID', `${EVAL_SCORER} gave ${metric} = ${String(value)} for ${name}; metrics are finite numbers`);
        const s = sums.get(metric) ?? { sum: 0, n: 0 };
        s.sum += value;
        s.n++;
        sums.set(metric, s);
      }
    }
  } finally {
    await runner.close();
  }
  const metrics = Object.fromEntries([...sums].map(([metric, s]) => [metric, s.sum / s.n]));
  return { algorithm: `${algorithm.manifest.name}@${algorithm.manifest.version}`, digest: algorithm.digest, items: set.items.length, failures, metrics };
}

/** A Markdown table, ready for the model card. */
export function formatEvalReport(report: EvalReport): string {
  const lines = [
    `${report.algorithm} (${report.digest}) on ${report.items} item(s) of ${EVAL_FILE}, ${report.failures.length} failed`,
    '',
    '| Metric | Value |',
    '| --- | --- |',
    ...Object.entries(report.metrics).map(([m, v]) => `| ${m} | ${Number(v.toFixed(4))} |`),
  ];
  for (const f of report.failures) lines.push(`failed: ${f.name}: ${f.error}`);
  return `${lines.join('\n')}\n`;
}
