/*
 * docker's json-file log driver: one JSON object per line of output,
 *
 *   {"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
 *
 * with rotation by size: when writing a line would take the live file past maxSize, it becomes
 * path.1 (path.1 → path.2 …, the oldest beyond maxFiles-1 removed) and a new live file starts.
 * A partial line is held until its newline arrives or the stream ends (then written without one).
 */
import * as fs from 'node:fs';
import { wrapSystemError } from '../spec/errors';
import type { JsonLogSpec } from './api';
import { nowRfc3339Nano } from './state';

/** Which stream a line came from. */
export type LogStream = 'stdout' | 'stderr';

/** A json-file log writer shared by a process's streams. */
export interface JsonLog {
  /** Feed bytes read from one stream. */
  write(stream: LogStream, chunk: Uint8Array): void;
  /** The stream ended: write its held partial line. */
  end(stream: LogStream): void;
  close(): void;
}

/** Open (append) a json-file log. `now` is for tests. */
export function openJsonLog(spec: JsonLogSpec, now: () => string = nowRfc3339Nano): JsonLog {
  const maxFiles = Math.max(1, spec.maxFiles);
  let fd = -1;
  let size = 0;
  const open = (): void => {
    try {
      fd = fs.openSync(spec.path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o640);
      size = fs.fstatSync(fd).size;
    } catch (err) {
      throw wrapSystemError(`open json log ${spec.path}`, err);
    }
  };
  const rotate = (): void => {
    fs.closeSync(fd);
    if (maxFiles === 1) {
      fs.truncateSync(spec.path, 0);
    } else {
      fs.rmSync(`${spec.path}.${maxFiles - 1}`, { force: true });
      for (let i = maxFiles - 2; i >= 1; i--) {
        if (fs.existsSync(`${spec.path}.${i}`)) fs.renameSync(`${spec.path}.${i}`, `${spec.path}.${i + 1}`);
      }
      fs.renameSync(spec.path, `${spec.path}.1`);
    }
    open();
  };
  const held: Record<LogStream, string> = { stdout: '', stderr: '' };
  const emit = (stream: LogStream, text: string): void => {
    const line = Buffer.from(`${JSON.stringify({ log: text, stream, time: now() })}\n`);
    if (spec.maxSize > 0 && size > 0 && size + line.length > spec.maxSize) rotate();
    fs.writeSync(fd, line);
    size += line.length;
  };
  open();
  return {
    write(stream, chunk) {
      let text = held[stream] + Buffer.from(chunk).toString('utf8');
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        emit(stream, text.slice(0, nl + 1));
        text = text.slice(nl + 1);
      }
      held[stream] = text;
    },
    end(stream) {
      if (held[stream] !== '') emit(stream, held[stream]);
      held[stream] = '';
    },
    close() {
      if (fd >= 0) fs.closeSync(fd);
      fd = -1;
    },
  };
}
