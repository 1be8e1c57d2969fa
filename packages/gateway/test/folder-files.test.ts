import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FOLDER_DEPTH, listFolderFiles, looksLikeRun } from '@arteria/gateway';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arteria-folder-files-'));
});

afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('listFolderFiles', () => {
  it('lists files in subfolders as relative paths, sorted; skips dot names, DICOMDIR, links, what is too deep and the top-level folders named', async () => {
    const root = join(dir, 'tree');
    const deep = Array.from({ length: MAX_FOLDER_DEPTH + 1 }, (_, i) => `d${i}`);
    await mkdir(join(root, ...deep), { recursive: true });
    await writeFile(join(root, ...deep.slice(0, MAX_FOLDER_DEPTH), 'deepest-listed.dcm'), '');
    await writeFile(join(root, ...deep, 'too-deep.dcm'), '');
    await mkdir(join(root, 'sent', 'x'), { recursive: true });
    await writeFile(join(root, 'sent', 'x', 'done.dcm'), '');
    await mkdir(join(root, 'study', 'sent'), { recursive: true });
    await writeFile(join(root, 'study', 'sent', 'IM1'), '');
    await writeFile(join(root, 'study', 'DICOMDIR'), '');
    await writeFile(join(root, 'study', '.DS_Store'), '');
    await mkdir(join(root, '.series'));
    await writeFile(join(root, '.series', 'run.dcm'), '');
    await writeFile(join(root, 'b.dcm'), '');
    await symlink(join(root, 'study'), join(root, 'loop'));
    await symlink(join(root, 'b.dcm'), join(root, 'link.dcm'));

    expect(await listFolderFiles(root, { skipTopLevel: ['sent'] })).toEqual([
      'b.dcm',
      `${deep.slice(0, MAX_FOLDER_DEPTH).join('/')}/deepest-listed.dcm`,
      // Only the top level's sent/ is the watcher's own: an export's folder of that name is looked into.
      'study/sent/IM1',
    ]);
    // Named on purpose (gateway send <folder>): a link to a file is that file; a link to a folder is still not followed.
    expect(await listFolderFiles(root, { skipTopLevel: ['sent'], followFileLinks: true })).toContain('link.dcm');
    expect((await listFolderFiles(root, { followFileLinks: true })).filter((f) => f.startsWith('loop/'))).toEqual([]);
  });

  it('takes a file as a run when it is named .dcm or is a Part 10 file', async () => {
    const part10 = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.alloc(16)]);
    await writeFile(join(dir, 'IM000001'), part10);
    await writeFile(join(dir, 'README.TXT'), 'a viewer note');
    await writeFile(join(dir, 'broken.DCM'), 'refused by name when sent');
    await writeFile(join(dir, 'short'), 'DICM');
    expect(await looksLikeRun(join(dir, 'IM000001'))).toBe(true);
    expect(await looksLikeRun(join(dir, 'broken.DCM'))).toBe(true);
    expect(await looksLikeRun(join(dir, 'README.TXT'))).toBe(false);
    expect(await looksLikeRun(join(dir, 'short'))).toBe(false);
    expect(await looksLikeRun(join(dir, 'missing'))).toBe(false);
  });
});
