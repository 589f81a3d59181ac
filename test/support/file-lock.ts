// One writer at a time for the test run's shared cache (seeded data directories, embedding vectors): test files
// run side by side (test/run.ts), and two of them building the same entry at once would each pay for it (a seeded
// embedded database costs a minute on the loaded project machine). The lock is a file created exclusively, holding
// its owner's pid; one whose owner died (a test process killed mid-build) is taken over. Whatever happens, what
// the lock guards is written as a draft and renamed into place, so a reader never sees half of it.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` while holding `lock` (a file path), waiting for whoever holds it now. */
export async function withFileLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      const handle = await open(lock, 'wx');
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // Empty while its owner is still writing its pid: that owner is alive.
    const owner = Number(await readFile(lock, 'utf8').catch(() => ''));
    if (owner > 0 && !alive(owner)) await rm(lock, { force: true });
    else await sleep(200);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
