import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';

/** SIGKILLs a child and waits for it; a child that already ended (by exit or signal) emits no more 'exit'. */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * Collects a child's output until it exits and its output ends: 'close', not 'exit', which may
 * come before the last of stdout is read (a busy machine makes that likelier), cutting the JSON
 * a caller parses. The child's output is not read before this (its pipes hold it), so 'close'
 * cannot have passed.
 */
export async function finished(child: ChildProcess): Promise<{ stdout: string; stderr: string; code: number | null }> {
  let stdout = '';
  let stderr = '';
  const closed = once(child, 'close') as Promise<[number | null]>;
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = await closed;
  return { stdout, stderr, code };
}
