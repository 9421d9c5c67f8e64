// Worker thread of the filesystem blob store's durable writes (server/blobs/durable-writer.ts): one
// blob per message, written with synchronous calls so the whole sequence — create the temp file, write,
// fsync, close, rename into place, fsync the directory (and its parent when the directory is new) —
// runs back to back on this thread instead of one event-loop turn per step on the server's thread.
// Plain JavaScript: no TypeScript loader needed.
import { parentPort } from 'node:worker_threads';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

function fsyncPath(path) {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

parentPort.on('message', (job) => {
  try {
    const fd = openSync(job.tmp, 'wx', 0o600);
    try {
      for (let done = 0; done < job.bytes.length; ) done += writeSync(fd, job.bytes, done, job.bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(job.tmp, job.target);
    } catch (error) {
      try {
        unlinkSync(job.tmp);
      } catch {
        /* already gone */
      }
      throw error;
    }
    fsyncPath(job.dir);
    if (job.root) fsyncPath(job.root);
    parentPort.postMessage({ id: job.id, ok: true });
  } catch (error) {
    parentPort.postMessage({ id: job.id, ok: false, error: { message: error.message, code: error.code } });
  }
});
