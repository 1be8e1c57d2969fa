import { mkdir, open, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Spool folder of an outbox: runs handed over as bytes are kept here until answered. */
export const spoolFolder = (outboxPath: string): string => `${outboxPath}.spool`;

/** A file name for a spooled run: entry id first (unique), then a readable hint of the caller's name. */
export function spoolPath(folder: string, entryId: string, name: string): string {
  const hint = basename(name).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return join(folder, hint.length > 0 ? `${entryId}-${hint}` : `${entryId}.dcm`);
}

export async function ensureFolder(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
}

/** Writes a new file and makes it and its name durable before returning. */
export async function writeDurably(path: string, bytes: Uint8Array, folder: string): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await syncFolder(folder);
}

/** Makes the names in a folder (files just created) durable. */
export async function syncFolder(folder: string): Promise<void> {
  const dir = await open(folder, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
