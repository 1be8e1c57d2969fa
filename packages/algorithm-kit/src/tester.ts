/**
 * `arteria algorithm test`: tries an algorithm package the way the platform will run it.
 * The package is loaded by the platform's registry (manifest, output schema, pinned model
 * digest) and every run goes through the platform's isolated runner (worker thread with
 * the manifest's memory and time limits, DICOM decoded in the thread, input contract,
 * output validated against the schema) with the platform's inference backend, both
 * from a whole file and streamed in chunks as the platform's workers feed it.
 */
import path from 'node:path';
import { ArteriaError, toArteriaError } from '@arteria/protocol';
import { AlgorithmRegistry, AlgorithmRunner, onnxRuntimeModuleUrl, type RegisteredAlgorithm, type RunResult } from '@arteria/worker';
import { GOLDEN_FILE, GoldenFile, describeInput, firstDifference, inputBytes, readJsonFile, writeJsonFile, type CaseInput, type GoldenCase } from './cases.js';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  /** manifest, golden, determinism, streaming, contract, resources */
  kind: string;
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface TestReport {
  algorithm: string;
  digest: string | undefined;
  checks: CheckResult[];
  /** Golden cases whose expectation was written (--update, or none recorded yet). */
  recorded: number;
  ok: boolean;
}

export interface TestOptions {
  /** Record the current outputs as the expectations of every golden case. */
  update?: boolean;
  /** Runner inference module (see AlgorithmRunnerOptions); default ONNX Runtime in the thread. */
  inferenceModule?: string;
  signal?: AbortSignal;
}

type Outcome = { ok: true; result: RunResult } | { ok: false; error: ArteriaError };

/** A share of the manifest's limits above which a case is flagged: little headroom on another machine. */
const TIME_WARN_SHARE = 0.5;
const HEAP_WARN_SHARE = 0.75;
/** Boundary runs larger than this are not generated (the contract may allow far more than a test should hold). */
const MAX_BOUNDARY_BYTES = 96 * 2 ** 20;

async function runCase(runner: AlgorithmRunner, algorithm: RegisteredAlgorithm, input: CaseInput, signal: AbortSignal | undefined): Promise<Outcome> {
  const bytes = await inputBytes(algorithm.dir, input);
  try {
    return { ok: true, result: await runner.run(algorithm, bytes, signal ? { signal } : {}) };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { ok: false, error: toArteriaError(err) };
  }
}

/** Chunks of an odd size, so frame and element boundaries fall inside chunks as they do off the network. */
const STREAM_CHUNK_BYTES = 64 * 1024 + 7;

async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += STREAM_CHUNK_BYTES) {
    // Each chunk on a later turn of the event loop, as reads from the store arrive.
    await new Promise<void>((resolve) => setImmediate(resolve));
    yield bytes.slice(i, i + STREAM_CHUNK_BYTES);
  }
}

/** The same case as the platform's workers run it: streamed into the thread while it is read. */
async function runStreamed(runner: AlgorithmRunner, algorithm: RegisteredAlgorithm, input: CaseInput, signal: AbortSignal | undefined): Promise<Outcome> {
  const bytes = await inputBytes(algorithm.dir, input);
  try {
    return { ok: true, result: await runner.run(algorithm, { chunks: chunksOf(bytes), size: bytes.length }, signal ? { signal } : {}) };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { ok: false, error: toArteriaError(err) };
  }
}

function streamingCheck(c: GoldenCase, whole: Outcome, streamed: Outcome): CheckResult {
  const check = (status: CheckStatus, detail: string): CheckResult => ({ kind: 'streaming', name: c.name, status, detail });
  if (!whole.ok) return !streamed.ok && streamed.error.code === whole.error.code ? check('pass', `refused with ${whole.error.code} as well`) : check('fail', `whole file: ${whole.error.code}; streamed: ${streamed.ok ? 'an output' : describeError(streamed.error)}`);
  if (!streamed.ok) return check('fail', `streamed in chunks: ${describeError(streamed.error)}`);
  const diff = firstDifference(whole.result.output, streamed.result.output, c.tolerance);
  return diff === undefined ? check('pass', 'streamed in chunks: same answer as from the whole file') : check('fail', `streamed answer differs at ${diff}`);
}

const describeError = (e: ArteriaError): string => `${e.code}: ${e.message}`;

function goldenCheck(c: GoldenCase, outcome: Outcome): CheckResult {
  const check = (status: CheckStatus, detail: string): CheckResult => ({ kind: 'golden', name: c.name, status, detail });
  const expected = c.expect;
  if (expected === undefined) return check('fail', 'no expectation recorded (run with --update to record the current output)');
  if ('error' in expected) {
    if (outcome.ok) return check('fail', `expected ${expected.error}, got an output`);
    return outcome.error.code === expected.error ? check('pass', `refused with ${expected.error}`) : check('fail', `expected ${expected.error}, got ${describeError(outcome.error)}`);
  }
  if (!outcome.ok) return check('fail', describeError(outcome.error));
  const diff = firstDifference(expected.output, outcome.result.output, c.tolerance);
  return diff === undefined ? check('pass', `output matches (${describeInput(c.input)})`) : check('fail', `output differs at ${diff}`);
}

function resourceCheck(algorithm: RegisteredAlgorithm, name: string, result: RunResult): CheckResult {
  const { timeoutMs, memoryMb } = algorithm.manifest.resources;
  const ms = result.decodeMs + result.computeMs;
  const detail = `${ms.toFixed(0)} ms of ${timeoutMs} ms, heap ${result.heapMb.toFixed(0)} MB of ${memoryMb} MB`;
  const tight = ms > timeoutMs * TIME_WARN_SHARE || result.heapMb > memoryMb * HEAP_WARN_SHARE;
  return { kind: 'resources', name, status: tight ? 'warn' : 'pass', detail: tight ? `${detail}: little headroom for a slower machine` : detail };
}

/** Limits are enforced by the runner; a case that hit one fails here with what it hit. */
function limitFailure(name: string, outcome: Outcome): CheckResult | undefined {
  if (outcome.ok || (outcome.error.code !== 'ALGORITHM_TIMEOUT' && outcome.error.code !== 'ALGORITHM_CRASHED')) return undefined;
  return { kind: 'resources', name, status: 'fail', detail: describeError(outcome.error) };
}

/** The first synthetic golden input with its frame count replaced, or undefined when it would be too large. */
function withFrames(input: CaseInput, frames: number): CaseInput | undefined {
  const options = 'xa' in input ? input.xa : 'balloon' in input ? input.balloon : undefined;
  if (options === undefined) return undefined;
  const rows = typeof options.rows === 'number' ? options.rows : 512;
  const columns = typeof options.columns === 'number' ? options.columns : 512;
  if (rows * columns * frames * 2 > MAX_BOUNDARY_BYTES) return undefined;
  const next = { ...options, frames };
  // Event timings of the original length may not fit the new one: let the generator choose.
  for (const key of ['contrast', 'inflation', 'tablePan']) delete (next as Record<string, unknown>)[key];
  return 'xa' in input ? { xa: next } : { balloon: next };
}

async function contractChecks(runner: AlgorithmRunner, algorithm: RegisteredAlgorithm, cases: readonly GoldenCase[], signal: AbortSignal | undefined): Promise<CheckResult[]> {
  const { input } = algorithm.manifest;
  // The smallest synthetic run among the cases that expect an output: boundary runs vary only its length.
  const pixels = (i: CaseInput): number => {
    const o = 'xa' in i ? i.xa : 'balloon' in i ? i.balloon : {};
    return (typeof o.rows === 'number' ? o.rows : 512) * (typeof o.columns === 'number' ? o.columns : 512);
  };
  const base = cases
    .filter((c) => !('file' in c.input) && !(c.expect !== undefined && 'error' in c.expect))
    .map((c) => c.input)
    .sort((a, b) => pixels(a) - pixels(b))[0];
  if (base === undefined) return [{ kind: 'contract', name: 'input contract', status: 'skip', detail: 'no golden case with a synthetic input to vary' }];
  if (!input.modalities.includes('XA')) return [{ kind: 'contract', name: 'input contract', status: 'skip', detail: 'synthetic runs are XA; the contract does not accept XA' }];
  const checks: CheckResult[] = [];
  const bounds: [string, number][] = [
    [`shortest run the contract accepts (${input.minFrames} frames)`, input.minFrames],
    [`longest run the contract accepts (${input.maxFrames} frames)`, input.maxFrames],
  ];
  for (const [name, frames] of bounds) {
    const varied = withFrames(base, frames);
    if (varied === undefined) {
      checks.push({ kind: 'contract', name, status: 'skip', detail: `more than ${MAX_BOUNDARY_BYTES / 2 ** 20} MB of pixels at the golden case's frame size` });
      continue;
    }
    const outcome = await runCase(runner, algorithm, varied, signal);
    checks.push(
      outcome.ok
        ? { kind: 'contract', name, status: 'pass', detail: 'accepted; output valid against outputSchema' }
        : { kind: 'contract', name, status: 'fail', detail: `the manifest accepts it, but: ${describeError(outcome.error)}` },
    );
  }
  if (input.minFrames > 1) {
    const varied = withFrames(base, input.minFrames - 1);
    const name = `a run below the contract (${input.minFrames - 1} frame${input.minFrames === 2 ? '' : 's'}) is refused before the algorithm runs`;
    if (varied !== undefined) {
      const outcome = await runCase(runner, algorithm, varied, signal);
      const refused = !outcome.ok && outcome.error.code === 'UNSUPPORTED_DICOM';
      checks.push({ kind: 'contract', name, status: refused ? 'pass' : 'fail', detail: outcome.ok ? 'it ran' : describeError(outcome.error) });
    }
  }
  return checks;
}

/**
 * Runs every check; never throws for a failing algorithm (the report says what failed),
 * only for an unusable golden file or an aborted signal.
 */
export async function testAlgorithm(dirArg: string, options: TestOptions = {}): Promise<TestReport> {
  const dir = path.resolve(dirArg);
  const { signal } = options;
  let algorithm: RegisteredAlgorithm;
  try {
    algorithm = (await AlgorithmRegistry.load([dir])).list()[0] as RegisteredAlgorithm;
  } catch (err) {
    const check: CheckResult = { kind: 'manifest', name: 'package loads as the platform loads it', status: 'fail', detail: toArteriaError(err).message };
    return { algorithm: path.basename(dir), digest: undefined, checks: [check], recorded: 0, ok: false };
  }
  const label = `${algorithm.manifest.name}@${algorithm.manifest.version}`;
  const checks: CheckResult[] = [{ kind: 'manifest', name: 'package loads as the platform loads it', status: 'pass', detail: `${label} ${algorithm.digest}` }];
  if (algorithm.manifest.runtime === 'onnx' && algorithm.manifest.model === undefined) {
    checks.push({ kind: 'manifest', name: 'onnx runtime names its model', status: 'fail', detail: 'runtime is onnx but the manifest has no model' });
  }

  const goldenFile = path.join(dir, GOLDEN_FILE);
  const golden = await readJsonFile(goldenFile, GoldenFile);
  let recorded = 0;
  const runner = new AlgorithmRunner({ inferenceModule: options.inferenceModule ?? onnxRuntimeModuleUrl() });
  try {
    for (const c of golden.cases) {
      const first = await runCase(runner, algorithm, c.input, signal);
      if (options.update === true || c.expect === undefined) {
        c.expect = first.ok ? { output: first.result.output } : { error: first.error.code };
        recorded++;
      }
      checks.push(goldenCheck(c, first));
      const hit = limitFailure(c.name, first);
      if (hit) checks.push(hit);
      else if (first.ok) checks.push(resourceCheck(algorithm, c.name, first.result));
      // Determinism: a second run in the same warm thread (the platform reuses threads) must
      // give the same answer: no state carried between runs, no unseeded randomness.
      const second = await runCase(runner, algorithm, c.input, signal);
      const a = first.ok ? JSON.stringify(first.result.output) : first.error.code;
      const b = second.ok ? JSON.stringify(second.result.output) : second.error.code;
      checks.push({ kind: 'determinism', name: c.name, status: a === b ? 'pass' : 'fail', detail: a === b ? 'same answer twice' : `first ${a.slice(0, 120)}, then ${b.slice(0, 120)}` });
      checks.push(streamingCheck(c, first, await runStreamed(runner, algorithm, c.input, signal)));
    }
    checks.push(...(await contractChecks(runner, algorithm, golden.cases, signal)));
  } finally {
    await runner.close();
  }
  if (recorded > 0) await writeJsonFile(goldenFile, golden);
  return { algorithm: label, digest: algorithm.digest, checks, recorded, ok: checks.every((c) => c.status !== 'fail') };
}

/** The report as the command prints it: one line per check, then a verdict. */
export function formatReport(report: TestReport): string {
  const mark: Record<CheckStatus, string> = { pass: 'ok  ', fail: 'FAIL', warn: 'warn', skip: 'skip' };
  const lines = report.checks.map((c) => `${mark[c.status]} ${c.kind.padEnd(11)} ${c.name}: ${c.detail}`);
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  if (report.recorded > 0) lines.push(`recorded ${report.recorded} golden expectation(s) in ${GOLDEN_FILE}: review the diff before committing`);
  lines.push(report.ok ? `${report.algorithm}: all ${report.checks.length} checks passed` : `${report.algorithm}: ${failed} of ${report.checks.length} checks failed`);
  return `${lines.join('\n')}\n`;
}
