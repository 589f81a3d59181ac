// Progress for long CLI work (seeding, rebuilding embeddings), on stderr so stdout stays clean. On a terminal
// one line is redrawn in place; otherwise each step is printed once, which reads well in CI logs.

export interface Progress {
  step(label: string): void;
  update(label: string, done: number, total: number): void;
  done(label: string): void;
}

export function consoleProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const live = stream.isTTY === true;
  let lastPercent = -1;
  return {
    step(label) {
      lastPercent = -1;
      if (live) stream.write(`\r\x1b[2K${label}…`);
      else stream.write(`${label}…\n`);
    },
    update(label, done, total) {
      const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (percent === lastPercent) return;
      lastPercent = percent;
      const width = 24;
      const filled = Math.round((percent / 100) * width);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}%`;
      if (live) stream.write(`\r\x1b[2K${label} ${bar} ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`);
      else if (percent % 25 === 0) stream.write(`${label} ${percent}% (${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')})\n`);
    },
    done(label) {
      lastPercent = -1;
      stream.write(`${live ? '\r\x1b[2K' : ''}${label} (${elapsed()})\n`);
    },
  };
}

export const silentProgress: Progress = { step() {}, update() {}, done() {} };

/** Progress as log records (for JSON logs: every line on stderr stays one JSON object), at each quarter. */
export function logProgress(log: { info(message: string): void }): Progress {
  const started = Date.now();
  let lastQuarter = -1;
  return {
    step(label) {
      lastQuarter = -1;
      log.info(`${label}…`);
    },
    update(label, done, total) {
      const quarter = total > 0 ? Math.floor((done / total) * 4) : 4;
      if (quarter === lastQuarter) return;
      lastQuarter = quarter;
      log.info(`${label} ${quarter * 25}% (${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')})`);
    },
    done(label) {
      lastQuarter = -1;
      log.info(`${label} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    },
  };
}
